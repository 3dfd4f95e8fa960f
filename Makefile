# steward — make help lists the targets.
GO        ?= go
BIN       ?= bin/steward
PREFIX    ?= /usr/local
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/stewardfleet/steward/internal/cli.Version=$(VERSION)
# Tool versions, pinned in one place.
STATICCHECK_VERSION ?= 2025.1.1

.PHONY: help build install test test-short faults faults-quick fuzz fuzz-quick bench bench-smoke bench-quick steward-bench lint demo console-demo compose-up compose-test compose-down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/steward (static, no cgo)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/steward

install: ## install bin/steward (make build first) as $(PREFIX)/bin/steward (PREFIX=/usr/local; DESTDIR for packaging)
	@test -x $(BIN) || { echo "$(BIN) is not built: run make build first (as yourself, not root)"; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/steward

test: ## run every test with the race detector (what CI runs)
	$(GO) test -race -shuffle=on -count=1 -timeout 20m ./...

test-short: ## run the quick tests only (skips end-to-end and fault tests)
	$(GO) test -short -count=1 ./...

faults: ## run the fault suite at full size (kills, link flaps, lost queue, empty broker, skewed clocks; ~30 min)
	STEWARD_FAULTS=full $(GO) test -count=1 -timeout 60m -v -run . ./test/faults/

faults-quick: ## run the fault suite scaled down (a few minutes; what CI runs)
	STEWARD_FAULTS=quick $(GO) test -count=1 -timeout 20m -v -run . ./test/faults/

# The fuzz targets: decoders, paths, signatures. Go fuzzes one target per run.
FUZZ_TARGETS := FuzzDecode:./internal/message FuzzDecodeWire:./internal/message FuzzCleanDirectory:./internal/message FuzzVerify:./internal/signature FuzzDecide:./internal/policy FuzzSafe:./internal/display
# FUZZTIME is a duration or a count (50000x). Go 1.26 can fail a duration run at its
# deadline with a bare "context deadline exceeded" and no crasher (go.dev/issue/75804);
# a count has no deadline to race.
FUZZTIME ?= 2m

fuzz: ## fuzz every target for FUZZTIME each (2m)
	@set -e; for t in $(FUZZ_TARGETS); do echo "fuzz $${t%%:*}"; $(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) $${t#*:}; done

fuzz-quick: ## fuzz every target briefly, by count (what CI runs)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=200000x

bench: ## run the Go benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-smoke: ## run every Go benchmark once, so none of them rots (what CI runs; no thresholds)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 5m $$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)

steward-bench: build ## run steward bench at full size (several minutes)
	$(BIN) bench

bench-quick: build ## run steward bench scaled down (seconds; what CI runs)
	$(BIN) bench --messages 300 --commands 50 --deadline 2s --nodes 20 --fanout 50 --scale-nodes 200 --hello-run 2s --idle 2s

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...

demo: build ## run central, ship1 and ship2 as separate processes, send the examples, print the results
	./scripts/demo.sh $(BIN)

console-demo: build ## the demo fleet with the console on 127.0.0.1:8090, running until Ctrl-C (ship2 goes offline now and then)
	DEMO_CONSOLE=1 ./scripts/demo.sh $(BIN)

# docker-compose (v1) or the compose plugin, whichever the machine has.
COMPOSE ?= $(shell command -v docker-compose >/dev/null 2>&1 && echo docker-compose || echo docker compose)
COMPOSE_PROJECT ?= steward

compose-up: ## build the compose fleet's images FROM scratch and start it (3 NATS servers, central, ships, a leaf site, Jaeger)
	./deploy/compose/setup.sh
	$(COMPOSE) -p $(COMPOSE_PROJECT) up -d --build
	@echo "fleet up: $(COMPOSE) -p $(COMPOSE_PROJECT) exec -T central steward nodes"
	@echo "Jaeger:   http://127.0.0.1:$${STEWARD_JAEGER_PORT-16686}/api/traces/<trace id from steward status <id>>"
	@echo "metrics:  http://127.0.0.1:$${STEWARD_METRICS_PORT-2112}/metrics"

compose-test: ## run the compose test: a fleet of its own, faults, traces; removes every container, network and volume it made
	./deploy/compose/setup.sh
	STEWARD_COMPOSE=1 COMPOSE="$(COMPOSE)" $(GO) test -count=1 -v -timeout 25m ./test/compose/

compose-down: ## stop the compose fleet and remove its containers, networks and volumes
	$(COMPOSE) -p $(COMPOSE_PROJECT) down -v --remove-orphans

clean: ## remove build output and demo state
	rm -rf bin demo/run
