package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/status"
)

// rewriteFields reads a reference message file and sets fields in each of
// its messages (what the test machine cannot give as the file has it).
func rewriteFields(t *testing.T, path string, fields map[string]any) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []map[string]any
	if err := json.Unmarshal(b, &msgs); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, m := range msgs {
		for k, v := range fields {
			m[k] = v
		}
	}
	if b, err = json.MarshalIndent(msgs, "", "    "); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// sendInBackground runs `steward send --wait -o json -f file` as central
// and delivers its result when it ends.
func (f *fleet) sendInBackground(file string) <-chan sendResult {
	done := make(chan sendResult, 1)
	go func() {
		out, _, _ := f.Steward("central", nil, "send", "--wait", "--timeout", "60s", "-o", "json", "-f", file)
		var res sendResult
		json.Unmarshal([]byte(out), &res)
		res.Records, res.Replies = split(res.Records)
		done <- res
	}()
	return done
}

// The reference file cli-command-cont.json has ship2 run `tail -f
// /var/log/syslog` for 60 s and stream it into my-syslog.log on central.
// The test machine may have no syslog and the test no minute: the command
// follows a log in ship2's data folder (from its start) for 15 s instead; every other field
// is the file's. Lines written to the log reach central while the command
// runs, in order and once; at its timeout the command is killed.
func TestCliCommandContReferenceFile(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship2")
	f.WaitOnline("central", "ship2")
	log := filepath.Join(f.Dir("ship2"), "data", "syslog")
	appendTo(t, log, "before the command\n")
	file := rewriteFields(t, filepath.Join(examples, "cli-command-cont.json"),
		map[string]any{"methodArgs": []string{"bash", "-c", "tail -n +1 -f syslog"}, "methodTimeout": 15})
	done := f.sendInBackground(file)

	out := filepath.Join(f.Dir("central"), "data", "some", "result", "directory", "ship2", "my-syslog.log")
	// steward results --follow shows the lines live, from another process.
	var id string
	fleettest.Eventually(t, 20*time.Second, "the message sent", func() bool { id = lastID(t, f); return id != "" })
	followed := make(chan [2]string, 1)
	go func() {
		stdout, stderr, _ := f.Steward("central", nil, "results", id, "--follow")
		followed <- [2]string{stdout, stderr}
	}()
	var want strings.Builder
	want.WriteString("before the command\n")
	for i := 1; i <= 5; i++ {
		line := fmt.Sprintf("syslog line %d\n", i)
		want.WriteString(line)
		appendTo(t, log, line)
		fleettest.Eventually(t, 20*time.Second, "central has "+strings.TrimSpace(line), func() bool {
			b, _ := os.ReadFile(out)
			return string(b) == want.String()
		})
	}
	res := <-done
	if len(res.Records) != 1 || res.Records[0].Status != status.ExecutionTimedOut || len(res.Replies) != 1 || res.Replies[0].Status != status.Succeeded {
		t.Fatalf("records %+v, replies %+v: want the command stopped at its timeout and its reply handled", res.Records, res.Replies)
	}
	if b, _ := os.ReadFile(out); string(b) != want.String() {
		t.Errorf("central's file:\n%s\nwant:\n%s", b, want.String())
	}
	got := <-followed
	if got[0] != want.String() || !strings.Contains(got[1], "--- ship2: execution_timed_out") {
		t.Errorf("steward results --follow printed:\n%s\n(stderr %s)\nwant:\n%s", got[0], got[1], want.String())
	}
	if stdout, _, code := f.Steward("central", nil, "results", id); code != 0 || stdout != want.String() {
		t.Errorf("steward results afterwards: exit %d\n%s", code, stdout)
	}
}

// The reference file tail-file.json has ship2 follow ./test.log (in its
// data folder) for 200 s into my/log/files/ship2/some.log on central; the
// test gives it 15 s (enough for its steps on a loaded machine). Lines
// arrive while it runs, across a rotation.
func TestTailFileReferenceFile(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship2")
	f.WaitOnline("central", "ship2")
	log := filepath.Join(f.Dir("ship2"), "data", "test.log")
	appendTo(t, log, "old line\n")
	done := f.sendInBackground(rewriteFields(t, filepath.Join(examples, "tail-file.json"), map[string]any{"methodTimeout": 15}))

	out := filepath.Join(f.Dir("central"), "data", "my", "log", "files", "ship2", "some.log")
	fleettest.Eventually(t, 20*time.Second, "the tail running on ship2", func() bool {
		st, _, _ := f.Steward("central", nil, "status", "-o", "json", lastID(t, f))
		return strings.Contains(st, `"status": "running"`)
	})
	appendTo(t, log, "first\n")
	fleettest.Eventually(t, 20*time.Second, "the first line on central", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == "first\n"
	})
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, log+".1", "last of the old file\n")
	appendTo(t, log, "first of the new file\n")
	want := "first\nlast of the old file\nfirst of the new file\n"
	fleettest.Eventually(t, 20*time.Second, "the lines around the rotation on central", func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == want
	})
	res := <-done
	if len(res.Records) != 1 || res.Records[0].Status != status.Succeeded {
		t.Fatalf("records %+v: want succeeded at the end of the watch", res.Records)
	}
	if b, _ := os.ReadFile(out); string(b) != want {
		t.Errorf("central's file:\n%s\nwant:\n%s", b, want)
	}
}

// lastID is the ID of the newest message central's audit log says it sent.
func lastID(t *testing.T, f *fleet) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(f.Dir("central"), "data", ".steward", "audit.jsonl"))
	id := ""
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Event   string `json:"event"`
			Message struct {
				ID string `json:"id"`
			} `json:"message"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Event == "sent" {
			id = rec.Message.ID
		}
	}
	return id
}
