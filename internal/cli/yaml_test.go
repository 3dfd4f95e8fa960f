package cli

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/status"
)

// sameData reports whether the YAML y and the JSON j hold the same data.
func sameData(t testing.TB, y, j []byte) bool {
	t.Helper()
	var fromYAML any
	if err := yaml.Unmarshal(y, &fromYAML); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, y)
	}
	// Through JSON, so that numbers compare as the same type.
	again, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(again, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &b); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, j)
	}
	return reflect.DeepEqual(a, b)
}

// TestOutputYAML: every -o takes yaml, with the JSON's keys and data.
func TestOutputYAML(t *testing.T) {
	clearEnv(t)
	tricky := rec("m1", "ship1", status.Succeeded, "123")
	tricky.Stderr = "true"
	newFleet := func() *fakeFleet {
		f := agedFleet()
		f.receipts = []client.Receipt{ok("m1", "ship1")}
		f.records = []*status.Record{tricky, failedWithStderr("m1", "ship2", "tree: command not found\n")}
		return f
	}
	msgs := t.TempDir() + "/msg.json"
	writeFile(t, msgs, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["uptime"]}`)
	for _, args := range [][]string{
		{"status", "m1"},
		{"nodes", "--node-expiry", "0"},
		{"methods"},
		{"config", "show"},
		{"send", "-f", msgs, "--wait"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			folder := []string{"--config-folder", t.TempDir()}
			if args[0] == "methods" {
				folder = nil
			}
			e := newTestEnv(t)
			e.useFleet(newFleet())
			_ = e.run(t, append(append(args, folder...), "-o", "json")...)
			j := append([]byte(nil), e.stdout.Bytes()...)
			e.useFleet(newFleet())
			_ = e.run(t, append(append(args, folder...), "-o", "yaml")...)
			y := e.stdout.Bytes()
			if len(j) == 0 || len(y) == 0 {
				t.Fatalf("json %q, yaml %q", j, y)
			}
			if !sameData(t, y, j) {
				t.Fatalf("YAML and JSON differ:\n%s\n%s", y, j)
			}
			if strings.HasPrefix(strings.TrimSpace(string(y)), "{") || strings.HasPrefix(strings.TrimSpace(string(y)), "[") {
				t.Fatalf("flow style:\n%s", y)
			}
		})
	}
}

func TestWriteYAML(t *testing.T) {
	var b strings.Builder
	v := map[string]any{"name": "ship1", "code": "007", "ok": "true", "n": 3, "list": []string{"a", "b"}, "empty": []string{}}
	if err := writeYAML(&b, v); err != nil {
		t.Fatal(err)
	}
	want := "code: \"007\"\nempty: []\nlist:\n  - a\n  - b\nn: 3\nname: ship1\nok: \"true\"\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
