package node_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

func TestCommandResultsComeBack(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	f.start(f.config("ship2"))
	c := f.client(central.cfg)
	ids := send(t, c, `[
	  {"toNodes":["ship1","ship2"],"method":"REQCliCommand","methodArgs":["sh","-c","echo hello from $0"],
	   "directory":"/var/cli/command_result/","fileName":"hello.result","methodTimeout":10},
	  {"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo partial; echo oops >&2; exit 3"],
	   "directory":"failing","fileName":"f.log"},
	  {"toNode":"ship2","method":"REQCliCommand","methodArgs":["sh","-c","sleep 30; echo never"],"methodTimeout":1,
	   "directory":"slow","fileName":"s.log"}
	]`)
	recs := wait(t, c, ids, 30*time.Second)
	byKey := map[string]*status.Record{}
	for _, r := range recs {
		byKey[r.ID+"."+r.Node] = r
	}
	for _, node := range []string{"ship1", "ship2"} {
		r := byKey[ids[0]+"."+node]
		if r == nil || r.Status != status.Succeeded || r.ExitCode == nil || *r.ExitCode != 0 || r.Output != "hello from sh\n" {
			t.Errorf("%s: %+v", node, r)
		}
		got := readEventually(t, filepath.Join(central.cfg.DataFolder, "var", "cli", "command_result", node, "hello.result"))
		if got != "hello from sh\n" {
			t.Errorf("reply file of %s: %q", node, got)
		}
	}
	if r := byKey[ids[1]+".ship1"]; r.Status != status.Failed || *r.ExitCode != 3 || r.Stderr != "oops\n" || r.Output != "partial\n" || r.ErrorCode != "exit_status" {
		t.Errorf("failing command: %+v", r)
	}
	if got := readEventually(t, filepath.Join(central.cfg.DataFolder, "failing", "ship1", "f.log")); got != "partial\n" {
		t.Errorf("failing command's reply: %q", got)
	}
	if r := byKey[ids[2]+".ship2"]; r.Status != status.ExecutionTimedOut || strings.Contains(r.Output, "never") {
		t.Errorf("slow command: %+v", r)
	}
	natstest.Eventually(t, 10*time.Second, "failures in central's error log", func() bool {
		a, _ := os.ReadFile(filepath.Join(central.cfg.DataFolder, methods.ErrorLogDir, "ship1", methods.ErrorLogFile))
		b, _ := os.ReadFile(filepath.Join(central.cfg.DataFolder, methods.ErrorLogDir, "ship2", methods.ErrorLogFile))
		return strings.Contains(string(a), "failed: REQCliCommand") && strings.Contains(string(a), "oops") &&
			strings.Contains(string(b), "execution_timed_out")
	})
}

func readEventually(t *testing.T, path string) string {
	t.Helper()
	var got string
	natstest.Eventually(t, 10*time.Second, "file "+path, func() bool {
		b, err := os.ReadFile(path)
		got = string(b)
		return err == nil && len(b) > 0
	})
	return got
}

func TestLargeOutputIsChunkedNotTruncated(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	// 3 MiB of numbered lines: larger than a NATS message, in many chunks.
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","seq 1 400000"],
	  "replyMethod":"REQToFile","directory":"big","fileName":"seq.txt"}`)
	recs := wait(t, c, ids, 60*time.Second)
	if recs[0].Status != status.Succeeded || !recs[0].OutputTruncated || recs[0].OutputBytes < 2<<20 {
		t.Fatalf("record: status %s truncated %v bytes %d", recs[0].Status, recs[0].OutputTruncated, recs[0].OutputBytes)
	}
	path := filepath.Join(central.cfg.DataFolder, "big", "ship1", "seq.txt")
	natstest.Eventually(t, 30*time.Second, "whole output written", func() bool {
		b, _ := os.ReadFile(path)
		return len(b) == recs[0].OutputBytes
	})
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 400000 || lines[0] != "1" || lines[len(lines)-1] != "400000" {
		t.Fatalf("reassembled output has %d lines", len(lines))
	}
}

func TestCompletedMessageNeverRunsTwice(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	ship1 := f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo run >> runs.txt; echo ok"]}`)
	wait(t, c, ids, 20*time.Second)

	// The same delivery again, as after a lost ack, but past the broker's
	// deduplication: only the node's ledger stands between it and a rerun.
	_, js := natstest.Connect(t, f.srv)
	ctx := natstest.Context(t, 10*time.Second)
	st, err := js.Stream(ctx, stream.MessagesStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, stream.MessageSubject("ship1"))
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(raw.Subject)
	msg.Data = raw.Data
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("again-"+ids[0])); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "ship1's queue settled", func() bool {
		info, err := consumerInfo(t, f, "ship1")
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
	if got := readFile(t, filepath.Join(ship1.cfg.DataFolder, "runs.txt")); got != "run\n" {
		t.Fatalf("command ran %d times", strings.Count(got, "run"))
	}
	recs, err := c.Status(ctx, ids[0])
	if err != nil || recs[0].Status != status.Succeeded {
		t.Fatalf("status after duplicate: %s %v", describe(recs), err)
	}
}

// TestStopMidCommandRunsAgainAfterRestart stops a node while a command runs
// (the command is killed), then starts it again: with retries left, the
// message runs to the end exactly once more; without, it is undeliverable.
func TestStopMidCommandRunsAgainAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		retries int
		want    status.Status
	}{{2, status.Succeeded}, {0, status.Undeliverable}} {
		t.Run(fmt.Sprintf("retries=%d", tc.retries), func(t *testing.T) {
			f := newFleet(t)
			central := f.start(f.config("central"))
			cfg := f.config("ship1")
			f.start(cfg)
			c := f.client(central.cfg)
			ids := send(t, c, fmt.Sprintf(`{"toNode":"ship1","method":"REQCliCommand","retries":%d,
			  "methodArgs":["sh","-c","echo started >> runs.txt; sleep 2; echo done"],"directory":"r","fileName":"out"}`, tc.retries))
			natstest.Eventually(t, 10*time.Second, "command running", func() bool {
				b, _ := os.ReadFile(filepath.Join(cfg.DataFolder, "runs.txt"))
				return len(b) > 0
			})
			f.stop("ship1")
			f.start(cfg)
			recs := wait(t, c, ids, 30*time.Second)
			if recs[0].Status != tc.want {
				t.Fatalf("want %s, got %s", tc.want, describe(recs))
			}
			if tc.want == status.Succeeded {
				if recs[0].Attempt != 2 {
					t.Errorf("attempt %d, want 2", recs[0].Attempt)
				}
				if got := readEventually(t, filepath.Join(central.cfg.DataFolder, "r", "ship1", "out")); got != "done\n" {
					t.Errorf("reply %q, want one done", got)
				}
			}
		})
	}
}

func TestReplyRecordsWhatTheSenderAsked(t *testing.T) {
	f := newFleet(t)
	central := f.start(f.config("central"))
	f.start(f.config("ship1"))
	c := f.client(central.cfg)
	ids := send(t, c, `{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","echo to console"],"replyMethod":"REQToConsole"}`)
	wait(t, c, ids, 20*time.Second)
	natstest.Eventually(t, 10*time.Second, "console output on central", func() bool {
		return strings.Contains(central.stdout.String(), "to console")
	})
	// The audit log on ship1 has the processed request, whole.
	ship1Audit := filepath.Join(f.run["ship1"].cfg.StateFolder(), "audit.jsonl")
	natstest.Eventually(t, 5*time.Second, "audit line", func() bool {
		b, _ := os.ReadFile(ship1Audit)
		for _, line := range strings.Split(string(b), "\n") {
			var rec struct {
				Event   string           `json:"event"`
				Status  string           `json:"status"`
				Message *message.Message `json:"message"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Event == "processed" && rec.Message != nil &&
				rec.Message.ID == ids[0] && rec.Status == "succeeded" && rec.Message.MethodArgs[2] == "echo to console" {
				return true
			}
		}
		return false
	})
}
