package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardfleet/steward/internal/status"
)

// The reference files op-process-list.json, op-command-stop.json and
// op-command-start.json, as they are, against ship2: list its processes,
// stop its REQHttpGet (then refused as not running), start it again for
// central and node1 (then it runs). Each writes its answer under
// opcommand_logs/ or test/dir/ on central.
func TestProcessOperationsReferenceFiles(t *testing.T) {
	f := newFleet(t)
	srv := newHTTPGetServer(t)
	f.Start("central")
	f.Start("ship2")
	f.WaitOnline("central", "ship2")
	get := func() *status.Record {
		t.Helper()
		file := filepath.Join(t.TempDir(), "get.json")
		b, _ := json.Marshal([]map[string]any{{"toNode": "ship2", "method": "REQHttpGet", "methodArgs": []string{srv.URL + "/"}}})
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		res, _ := f.sendWait(file)
		if len(res.Records) != 1 {
			t.Fatalf("REQHttpGet: %+v", res.Records)
		}
		return res.Records[0]
	}
	ok := func(name string) *status.Record {
		t.Helper()
		res, code := f.sendWait(filepath.Join(examples, name))
		if code != 0 || len(res.Records) != 1 || res.Records[0].Status != status.Succeeded {
			t.Fatalf("%s: exit %d, %+v", name, code, res.Records)
		}
		return res.Records[0]
	}

	if r := ok("op-process-list.json"); !strings.Contains(r.Output, "method REQHttpGet running for every node") {
		t.Errorf("the process list: %q", r.Output)
	}
	if b, err := os.ReadFile(filepath.Join(f.Dir("central"), "data", "test", "dir", "ship2", "test.result")); err != nil || !strings.Contains(string(b), "processes on ship2") {
		t.Errorf("the list's reply file: %q %v", b, err)
	}
	if r := ok("op-command-stop.json"); !strings.Contains(r.Output, "REQHttpGet stopped on ship2") {
		t.Errorf("stopProc: %q", r.Output)
	}
	if r := get(); r.Status != status.Rejected || r.ErrorCode != "not_running" {
		t.Errorf("REQHttpGet after stopProc: %s %s %s", r.Status, r.ErrorCode, r.Error)
	}
	if r := ok("op-command-start.json"); !strings.Contains(r.Output, "REQHttpGet started on ship2 for central, node1") {
		t.Errorf("startProc: %q", r.Output)
	}
	if r := get(); r.Status != status.Succeeded || r.Output != httpGetPage {
		t.Errorf("REQHttpGet after startProc: %s %s", r.Status, r.Error)
	}
	if b, err := os.ReadFile(filepath.Join(f.Dir("central"), "data", "opcommand_logs", "ship2", "some.log")); err != nil ||
		!strings.Contains(string(b), "stopped on ship2") || !strings.Contains(string(b), "started on ship2") {
		t.Errorf("the operations' reply file: %q %v", b, err)
	}
}
