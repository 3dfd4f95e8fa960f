package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// newStore starts a broker with steward's layout and returns a store on
// its status bucket, and the bucket itself.
func newStore(t testing.TB) (*status.Store, jetstream.KeyValue) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	a, err := stream.Apply(natstest.Context(t, 20*time.Second), js, stream.Layout{}, nil)
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	return status.NewStore(js, a.Status), a.Status
}

func record(id, node string, s status.Status) *status.Record {
	return &status.Record{ID: id, Node: node, FromNode: "central", Method: "REQPing", Status: s, UpdatedAt: time.Now().UTC()}
}

func mustGet(t testing.TB, st *status.Store, key string) (*status.Record, uint64) {
	t.Helper()
	r, rev, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return r, rev
}

func TestTerminalAndSuccess(t *testing.T) {
	cases := []struct {
		s                 status.Status
		terminal, success bool
	}{
		{status.Pending, false, false},
		{status.Delivered, false, false},
		{status.Running, false, false},
		{status.Succeeded, true, true},
		{status.Failed, true, false},
		{status.ExecutionTimedOut, true, false},
		{status.DeliveryTimedOut, true, false},
		{status.Undeliverable, true, false},
		{status.Rejected, true, false},
		{status.Cancelled, true, false},
		{status.Status("bogus"), false, false},
	}
	for _, tc := range cases {
		t.Run(string(tc.s), func(t *testing.T) {
			if got := tc.s.Terminal(); got != tc.terminal {
				t.Errorf("Terminal() = %v, want %v", got, tc.terminal)
			}
			if got := tc.s.Success(); got != tc.success {
				t.Errorf("Success() = %v, want %v", got, tc.success)
			}
		})
	}
}

func TestKey(t *testing.T) {
	r := record("ABC", "ship1", status.Pending)
	if got := r.Key(); got != "ABC.ship1" {
		t.Errorf("Key() = %q, want ABC.ship1", got)
	}
}

func TestSetOutput(t *testing.T) {
	cases := []struct {
		name      string
		size      int
		truncated bool
	}{
		{"empty", 0, false},
		{"small", 10, false},
		{"exactly MaxOutput", status.MaxOutput, false},
		{"one byte over", status.MaxOutput + 1, true},
		{"three times MaxOutput", 3 * status.MaxOutput, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := make([]byte, tc.size)
			for i := range out {
				out[i] = 'a' + byte(i%26)
			}
			var r status.Record
			r.SetOutput(out)
			if r.OutputBytes != tc.size {
				t.Errorf("OutputBytes = %d, want %d", r.OutputBytes, tc.size)
			}
			if r.OutputTruncated != tc.truncated {
				t.Errorf("OutputTruncated = %v, want %v", r.OutputTruncated, tc.truncated)
			}
			want := string(out[:min(tc.size, status.MaxOutput)])
			if r.Output != want {
				t.Errorf("Output has %d bytes, want the first %d of the output", len(r.Output), len(want))
			}

			// The flags survive the trip through JSON.
			b, err := json.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			var back status.Record
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.OutputBytes != r.OutputBytes || back.OutputTruncated != r.OutputTruncated || back.Output != r.Output {
				t.Errorf("after JSON: %d bytes, truncated %v, output %d bytes", back.OutputBytes, back.OutputTruncated, len(back.Output))
			}
		})
	}
}

func TestSetStderr(t *testing.T) {
	var r status.Record
	r.SetStderr([]byte(strings.Repeat("e", status.MaxOutput+100)))
	if len(r.Stderr) != status.MaxOutput {
		t.Errorf("Stderr has %d bytes, want %d", len(r.Stderr), status.MaxOutput)
	}
	r.SetStderr([]byte("short"))
	if r.Stderr != "short" {
		t.Errorf("Stderr = %q", r.Stderr)
	}
}

// TestCreateNeverOverwrites: a pending record is written only where there
// is none; a second Create says ErrExists (the sender then looks at what is
// there) and changes nothing.
func TestCreateNeverOverwrites(t *testing.T) {
	st, kv := newStore(t)
	ctx := t.Context()

	cases := []struct {
		name   string
		before []status.Status // written with Put first
		want   status.Status
	}{
		{"nothing there", nil, status.Pending},
		{"after a put", []status.Status{status.Delivered}, status.Delivered},
		{"after two puts", []status.Status{status.Delivered, status.Succeeded}, status.Succeeded},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "MSG" + string(rune('A'+i))
			for _, s := range tc.before {
				if err := st.Put(ctx, record(id, "ship1", s), time.Hour); err != nil {
					t.Fatalf("Put %s: %v", s, err)
				}
			}
			err := st.CreateAsync(ctx, record(id, "ship1", status.Pending), time.Hour).Wait(ctx)
			if len(tc.before) == 0 && err != nil || len(tc.before) > 0 && !errors.Is(err, status.ErrExists) {
				t.Fatalf("Create's Wait = %v", err)
			}
			got, _ := mustGet(t, st, id+".ship1")
			if got.Status != tc.want {
				t.Errorf("status %s, want %s", got.Status, tc.want)
			}
			hist, err := kv.History(ctx, id+".ship1")
			if err != nil {
				t.Fatal(err)
			}
			if want := max(len(tc.before), 1); len(hist) != want {
				t.Errorf("history holds %d entries, want %d: Create wrote when it should not have", len(hist), want)
			}
		})
	}

	t.Run("create twice", func(t *testing.T) {
		first := record("TWICE", "ship1", status.Pending)
		first.Error = "first"
		if err := st.CreateAsync(ctx, first, time.Hour).Wait(ctx); err != nil {
			t.Fatal(err)
		}
		second := record("TWICE", "ship1", status.Pending)
		second.Error = "second"
		if err := st.CreateAsync(ctx, second, time.Hour).Wait(ctx); !errors.Is(err, status.ErrExists) {
			t.Fatalf("second Create's Wait = %v, want ErrExists", err)
		}
		got, _ := mustGet(t, st, "TWICE.ship1")
		if got.Error != "first" {
			t.Errorf("the second Create replaced the first: %q", got.Error)
		}
	})
}

func TestPutGetUpdate(t *testing.T) {
	st, _ := newStore(t)
	ctx := t.Context()

	r := record("UPD", "ship1", status.Pending)
	r.Deadline = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := st.PutAsync(ctx, r, time.Hour).Wait(ctx); err != nil {
		t.Fatalf("PutAsync: %v", err)
	}
	got, rev1 := mustGet(t, st, "UPD.ship1")
	if got.Status != status.Pending || got.ID != "UPD" || got.Node != "ship1" || !got.Deadline.Equal(r.Deadline) {
		t.Errorf("Get returned %+v", got)
	}

	r.Status = status.Running
	if err := st.Put(ctx, r, time.Hour); err != nil {
		t.Fatalf("Put: %v", err)
	}
	got, rev2 := mustGet(t, st, "UPD.ship1")
	if got.Status != status.Running || rev2 <= rev1 {
		t.Fatalf("after Put: status %s rev %d (was %d)", got.Status, rev2, rev1)
	}

	t.Run("stale revision", func(t *testing.T) {
		stale := record("UPD", "ship1", status.DeliveryTimedOut)
		err := st.Update(ctx, stale, rev1, time.Hour)
		if !errors.Is(err, status.ErrConflict) {
			t.Fatalf("Update at a stale revision: want ErrConflict, got %v", err)
		}
		if got, _ := mustGet(t, st, "UPD.ship1"); got.Status != status.Running {
			t.Errorf("a failed Update changed the record to %s", got.Status)
		}
	})
	t.Run("current revision", func(t *testing.T) {
		done := record("UPD", "ship1", status.Succeeded)
		if err := st.Update(ctx, done, rev2, time.Hour); err != nil {
			t.Fatalf("Update at the current revision: %v", err)
		}
		got, rev3 := mustGet(t, st, "UPD.ship1")
		if got.Status != status.Succeeded || rev3 <= rev2 {
			t.Errorf("after Update: status %s rev %d", got.Status, rev3)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		_, _, err := st.Get(ctx, "NOPE.ship1")
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("Get of a missing record: want ErrKeyNotFound, got %v", err)
		}
	})
}

func TestList(t *testing.T) {
	st, _ := newStore(t)
	ctx := t.Context()
	// Written out of order; MSG1X shares a prefix with MSG1.
	for _, r := range []*status.Record{
		record("MSG1", "ship3", status.Pending),
		record("MSG1", "central", status.Succeeded),
		record("MSG1X", "ship1", status.Pending),
		record("MSG2", "ship1", status.Pending),
		record("MSG1", "ship1", status.Running),
	} {
		if err := st.Put(ctx, r, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		id    string
		nodes string
	}{
		{"MSG1", "central,ship1,ship3"},
		{"MSG1X", "ship1"},
		{"MSG2", "ship1"},
		{"NONE", ""},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			recs, err := st.List(ctx, tc.id)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			var nodes []string
			for _, r := range recs {
				if r.ID != tc.id {
					t.Errorf("List(%s) returned a record of %s", tc.id, r.ID)
				}
				nodes = append(nodes, r.Node)
			}
			if got := strings.Join(nodes, ","); got != tc.nodes {
				t.Errorf("List(%s) nodes %q, want %q", tc.id, got, tc.nodes)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for _, r := range []*status.Record{
		record("W1", "ship1", status.Pending),
		record("W1", "ship2", status.Pending),
		record("OTHER", "ship1", status.Pending),
	} {
		if err := st.Put(ctx, r, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := st.Watch(ctx, []string{"W1"})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	next := func() *status.Record {
		t.Helper()
		for {
			select {
			case r, ok := <-ch:
				if !ok {
					t.Fatal("watch channel closed early")
				}
				if r == nil { // end of the current records
					continue
				}
				return r
			case <-time.After(10 * time.Second):
				t.Fatal("no record from Watch")
				return nil
			}
		}
	}

	seen := map[string]status.Status{}
	for range 2 {
		r := next()
		seen[r.Key()] = r.Status
	}
	if seen["W1.ship1"] != status.Pending || seen["W1.ship2"] != status.Pending || len(seen) != 2 {
		t.Fatalf("current records: %v", seen)
	}

	// A change to another message is not reported; one to W1 is.
	if err := st.Put(ctx, record("OTHER", "ship1", status.Succeeded), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, record("W1", "ship2", status.Succeeded), time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := next(); r.Key() != "W1.ship2" || r.Status != status.Succeeded {
		t.Errorf("change: got %s %s, want W1.ship2 succeeded", r.Key(), r.Status)
	}

	cancel()
	natstest.Eventually(t, 10*time.Second, "the watch channel to close", func() bool {
		select {
		case _, ok := <-ch:
			return !ok
		default:
			return false
		}
	})
}

func TestWatchSeveralMessages(t *testing.T) {
	st, _ := newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch, err := st.Watch(ctx, []string{"A", "B"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*status.Record{
		record("C", "ship1", status.Pending),
		record("A", "ship1", status.Pending),
		record("B", "ship1", status.Pending),
	} {
		if err := st.Put(ctx, r, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{}
	for len(got) < 2 {
		select {
		case r := <-ch:
			if r != nil {
				got[r.ID] = true
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("got %v, want A and B", got)
		}
	}
	if got["C"] {
		t.Errorf("Watch of A and B reported C")
	}
}

// TestSetOutputKeepsWholeCharacters: the record keeps "the first 64 KiB"
// of the output. Cut in the middle of a UTF-8 character, the stored output
// is no longer a prefix of the output once it went through JSON.
func TestSetOutputKeepsWholeCharacters(t *testing.T) {
	out := []byte("a" + strings.Repeat("é", status.MaxOutput)) // 'é' is 2 bytes: the cut splits one
	var r status.Record
	r.SetOutput(out)
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	var back status.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), back.Output) || len(back.Output) > status.MaxOutput {
		t.Errorf("stored output (%d bytes, ends %q) is not a prefix of the output of at most %d bytes",
			len(back.Output), back.Output[len(back.Output)-4:], status.MaxOutput)
	}
}

// Every record carries its own TTL: it disappears when that passes, the
// records around it stay.
func TestRecordsExpireByTheirOwnTTL(t *testing.T) {
	st, _ := newStore(t)
	ctx := t.Context()
	if err := st.Put(ctx, record("SHORT", "ship1", status.Succeeded), time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, record("LONG", "ship1", status.Succeeded), time.Hour); err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 10*time.Second, "the short record to expire", func() bool {
		_, _, err := st.Get(ctx, "SHORT.ship1")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	mustGet(t, st, "LONG.ship1")
}

// Reply records live beside their delivery: List and Watch show both, the
// delivery first; Done waits for the reply when one was sent.
func TestReplyRecords(t *testing.T) {
	st, _ := newStore(t)
	ctx := t.Context()
	d := record("R1", "ship1", status.Succeeded)
	d.ReplySent = true
	if err := st.Put(ctx, d, time.Hour); err != nil {
		t.Fatal(err)
	}
	if d.Done(nil) {
		t.Error("a delivery whose reply is not handled yet is done")
	}
	reply := record("R1", "ship1", status.Succeeded)
	reply.Reply = true
	reply.Method = "REQToFileAppend"
	if reply.Key() != "R1.ship1.reply" {
		t.Fatalf("reply key %q", reply.Key())
	}
	if err := st.Put(ctx, reply, time.Hour); err != nil {
		t.Fatal(err)
	}
	if !d.Done(reply) {
		t.Error("a delivery whose reply succeeded is not done")
	}
	if !record("R2", "ship1", status.Failed).Done(nil) {
		t.Error("a failed delivery that sent no reply is not done")
	}
	recs, err := st.List(ctx, "R1")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Reply || !recs[1].Reply {
		t.Errorf("List: %+v", recs)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := st.Watch(wctx, []string{"R1"})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for r := range ch {
		if r == nil {
			break
		}
		seen++
	}
	if seen != 2 {
		t.Errorf("Watch showed %d current records, want 2", seen)
	}
}
