package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/registry"
	"github.com/stewardfleet/steward/internal/target"
)

// knownNodes is the node registry as send saw it before sending, judged
// at now on the broker's clock. A nil *knownNodes knows nothing.
type knownNodes struct {
	byName map[string]*registry.Node
	now    time.Time
}

// absent says, for each target of the sent messages that is not online,
// since when: "offline since 2025-03-01 09:00 UTC (3h ago)", "stopped
// since …" or "never seen".
func (k *knownNodes) absent(receipts []client.Receipt) map[string]string {
	if k == nil {
		return nil
	}
	out := map[string]string{}
	for _, r := range receipts {
		if r.ID == "" || r.Error != "" {
			continue
		}
		for _, name := range r.Nodes {
			n, ok := k.byName[name]
			switch {
			case !ok:
				out[name] = "never seen"
			case n.Online(k.now):
			case !n.StoppedAt.IsZero():
				out[name] = "stopped since " + since(k.now, n.StoppedAt)
			default:
				out[name] = "offline since " + since(k.now, n.LastSeen)
			}
		}
	}
	return out
}

// since is a time and how long ago it was: "2025-03-01 09:00 UTC (3h ago)".
func since(now, t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + age(now, t) + ")"
}

// checkTargets reads the node registry and warns on standard error about
// every target of input that it has never seen, most likely a misspelt
// name, naming the known nodes it is close to; with strict it refuses to
// send instead. The registry is returned for the progress of --wait; nil
// when it cannot be read (then only strict is an error).
func (a *app) checkTargets(ctx context.Context, fl fleet, input []byte, strict bool) (*knownNodes, error) {
	nodes, err := fl.Nodes(ctx)
	if err != nil {
		if strict {
			return nil, exitError(ExitUnreachable, fmt.Errorf("--strict: cannot read the node registry: %w", err))
		}
		fmt.Fprintf(a.stderr, "warning: cannot read the node registry to check the target nodes: %v\n", err)
		return nil, nil
	}
	now, err := fl.Now(ctx)
	if err != nil {
		now = a.now()
	}
	k := &knownNodes{byName: make(map[string]*registry.Node, len(nodes)), now: now}
	for _, n := range nodes {
		k.byName[n.Name] = n
	}
	// Messages that do not decode are reported by Send.
	msgs, _, _, _ := message.Decode(input)
	var unknown []string
	for _, m := range msgs {
		for _, t := range m.Targets() {
			if target.IsExpr(t) {
				continue // resolved against the registry when sent
			}
			if _, ok := k.byName[t]; !ok && !slices.Contains(unknown, t) {
				unknown = append(unknown, t)
			}
		}
	}
	if len(unknown) == 0 {
		return k, nil
	}
	var lines []string
	for _, t := range unknown {
		line := fmt.Sprintf("node %q has never been seen (it is not in the node registry)", t)
		if s := k.closeTo(t); len(s) > 0 {
			line += fmt.Sprintf("; did you mean %s?", quoteJoin(s, " or "))
		}
		lines = append(lines, line)
	}
	if strict {
		return nil, exitError(ExitUsage, errors.New("--strict: "+strings.Join(lines, "; ")+
			"\nnothing was sent; without --strict the messages wait for such a node until their deadline"))
	}
	for _, l := range lines {
		fmt.Fprintf(a.stderr, "warning: %s; its messages wait for it until their deadline (--strict refuses)\n", l)
	}
	return k, nil
}

// closeTo lists the known node names a few edits from name.
func (k *knownNodes) closeTo(name string) []string {
	var out []string
	for n := range k.byName {
		if levenshtein(strings.ToLower(name), strings.ToLower(n)) <= suggestDistance {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}
