package broker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/natstest"
)

// These tests fill a real file system: a small tmpfs mounted for the test
// (which needs root; without it they skip).

const (
	diskSize = 24 << 20
	// minFree is what the supervisor waits for: more than a full disk
	// has, less than the disk has once the ballast is gone.
	minFree = 8 << 20
	// leave is what the ballast leaves free: room for a few messages.
	leave = 1 << 20
)

// mountDisk mounts a tmpfs of size bytes for the test and returns its root;
// the cleanup detaches it (umount -l).
func mountDisk(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs on %s (the test needs root): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// ballast writes a file into dir until fewer than leave bytes are free on
// its file system, and returns the file's path.
func ballast(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 256<<10)
	for free(t, dir) >= leave {
		if _, err := f.Write(chunk); errors.Is(err, syscall.ENOSPC) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// numbered is message n of a test: 64 KiB that start with its number.
func numbered(n uint64) []byte {
	b := make([]byte, 64<<10)
	copy(b, fmt.Sprintf("msg-%06d", n))
	return b
}

// checkKept checks that messages 1..n of s are the ones published.
func checkKept(t *testing.T, ctx context.Context, s jetstream.Stream, n uint64) {
	t.Helper()
	for seq := uint64(1); seq <= n; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d, stored before the outage: %v", seq, err)
		}
		if want := fmt.Sprintf("msg-%06d", seq); !strings.HasPrefix(string(m.Data), want) {
			t.Fatalf("message %d starts %q, want %q", seq, m.Data[:10], want)
		}
	}
}

// logLine returns the one line of out that contains msg.
func logLine(t *testing.T, out, msg string) string {
	t.Helper()
	var found []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, msg) {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d log lines say %q, want 1:\n%s", len(found), msg, out)
	}
	return found[0]
}

// checkReported checks that OnChange saw one outage, with an error that
// wraps want, then the return.
func checkReported(t *testing.T, got []broker.Status, want ...error) {
	t.Helper()
	if len(got) != 2 || got[0].Up || !got[1].Up {
		t.Fatalf("OnChange saw %+v, want down then up", got)
	}
	var matched bool
	for _, w := range want {
		matched = matched || errors.Is(got[0].Err, w)
	}
	if !matched {
		t.Errorf("outage reported with %v, want one of %v", got[0].Err, want)
	}
	if got[1].Err != nil {
		t.Errorf("return reported with error %v", got[1].Err)
	}
}

// TestSuperviseRecoversFromAFullDisk is what a full disk does to central:
// a publish fails to write, the stream keeps that write error and takes no
// more messages, JetStream itself stays on. Once there is room again the
// supervisor restarts JetStream and the same client publishes again.
func TestSuperviseRecoversFromAFullDisk(t *testing.T) {
	root := mountDisk(t, diskSize)
	store := filepath.Join(root, "store")
	var logs logBuffer
	bo := broker.Options{Listen: "127.0.0.1:0", StoreDir: store, Name: "central", Logger: logger(&logs)}
	srv := start(t, bo)
	started := *srv.JetStreamConfig()
	nc, js := connect(t, srv)
	ctx := natstest.Context(t, 3*time.Minute)
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "KEEP", Subjects: []string{"keep.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ship1", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	var seen changes
	// The default interval, so the time to recover below is the real one.
	sup := newSupervisor(t, srv, broker.SuperviseOptions{Logger: logger(&logs), MinFree: minFree, OnChange: seen.add})
	run(t, sup)

	path := ballast(t, root)
	var stored uint64
	for n := uint64(1); ; n++ {
		ack, err := publish(ctx, js, "keep.x", numbered(n), 2*time.Second)
		if err != nil {
			t.Logf("publish %d on a full disk: %v", n, err)
			break
		}
		if ack.Sequence != n {
			t.Fatalf("message %d stored as %d", n, ack.Sequence)
		}
		stored = n
		if n*uint64(len(numbered(n))) > diskSize {
			t.Fatal("the disk never filled up")
		}
	}
	if stored == 0 {
		t.Fatal("the ballast left no room for a single message")
	}
	natstest.Eventually(t, 30*time.Second, "the supervisor to see the outage", func() bool { return !sup.Status().Up })
	// nats-server (2.15.2) leaves JetStream on and only the stream broken.
	st := sup.Status()
	if !errors.Is(st.Err, broker.ErrStreamWrite) || !srv.JetStreamEnabled() {
		t.Errorf("outage error %v with JetStream on: %v; want a stream write error with JetStream on", st.Err, srv.JetStreamEnabled())
	}
	if st.FreeBytes < 0 || st.FreeBytes >= minFree {
		t.Errorf("free space %d on a full disk", st.FreeBytes)
	}
	// The supervisor waits for room: while the disk is full, publishes fail.
	if _, err := publish(ctx, js, "keep.x", []byte("full"), 2*time.Second); err == nil {
		t.Fatal("a publish succeeded on a full disk")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	var ack *jetstream.PubAck
	natstest.Eventually(t, time.Minute, "publishes to work again", func() bool {
		ack, err = publish(ctx, js, "keep.x", []byte("after"), time.Second)
		return err == nil
	})
	t.Logf("publishes work again %s after the space was freed; the client reconnected %d times",
		time.Since(freed).Round(time.Millisecond), nc.Reconnects)
	if ack.Sequence <= stored {
		t.Errorf("the first message after the outage has sequence %d, not after the %d kept", ack.Sequence, stored)
	}
	checkKept(t, ctx, s, stored)
	c, err := s.Consumer(ctx, "ship1")
	if err != nil {
		t.Fatalf("consumer made before the outage: %v", err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumPending < stored+1 {
		t.Errorf("consumer has %d pending, want at least %d", ci.NumPending, stored+1)
	}

	natstest.Eventually(t, 30*time.Second, "the supervisor to report JetStream up", func() bool { return sup.Status().Up })
	t.Logf("the supervisor had JetStream back %s after the space was freed", sup.Status().Since.Sub(freed).Round(time.Millisecond))
	checkReported(t, seen.list(), broker.ErrStreamWrite)
	out := logs.String()
	down := logLine(t, out, "embedded JetStream is down")
	for _, want := range []string{"level=ERROR", "store_dir=" + store, "free_bytes=", "no space left on device"} {
		if !strings.Contains(down, want) {
			t.Errorf("the outage log line lacks %q: %s", want, down)
		}
	}
	back := logLine(t, out, "embedded JetStream is back")
	for _, want := range []string{"level=INFO", "store_dir=" + store, "streams=1", "consumers=1"} {
		if !strings.Contains(back, want) {
			t.Errorf("the return log line lacks %q: %s", want, back)
		}
	}
	t.Logf("the supervisor said:\n%s%s", down, back)
	// JetStream came back as it started, limits included: the storage
	// limit nats-server sized from the disk at start is kept, not sized
	// again from a disk that was just full.
	if again := *srv.JetStreamConfig(); again != started {
		t.Errorf("JetStream restarted with %+v, started with %+v", again, started)
	}
}

// TestSuperviseReenablesJetStream: when a stream that copies another one
// (a mirror) fails to write, nats-server turns JetStream off altogether.
// The supervisor turns it on again once there is room.
func TestSuperviseReenablesJetStream(t *testing.T) {
	root := mountDisk(t, diskSize)
	store := filepath.Join(root, "store")
	var logs logBuffer
	bo := broker.Options{Listen: "127.0.0.1:0", StoreDir: store, Name: "central", Logger: logger(&logs)}
	srv := start(t, bo)
	nc, js := connect(t, srv)
	ctx := natstest.Context(t, 3*time.Minute)
	origin, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORIGIN", Subjects: []string{"origin.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	// More than the ballast leaves free, so that the copy cannot fit.
	const stored = 48
	for n := uint64(1); n <= stored; n++ {
		if _, err := js.Publish(ctx, "origin.x", numbered(n)); err != nil {
			t.Fatal(err)
		}
	}
	var seen changes
	sup := newSupervisor(t, srv, broker.SuperviseOptions{Logger: logger(&logs), MinFree: minFree, Interval: 100 * time.Millisecond, OnChange: seen.add})
	run(t, sup)

	path := ballast(t, root)
	mirror, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "COPY", Storage: jetstream.FileStorage, Mirror: &jetstream.StreamSource{Name: "ORIGIN"}})
	if err != nil {
		t.Fatal(err)
	}
	natstest.Eventually(t, 30*time.Second, "nats-server to turn JetStream off", func() bool { return !srv.JetStreamEnabled() })
	natstest.Eventually(t, 30*time.Second, "the supervisor to see JetStream off", func() bool {
		return errors.Is(sup.Status().Err, broker.ErrJetStreamOff)
	})
	if _, err := publish(ctx, js, "origin.x", []byte("off"), 2*time.Second); err == nil {
		t.Fatal("a publish succeeded with JetStream off")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	var ack *jetstream.PubAck
	natstest.Eventually(t, time.Minute, "publishes to work again", func() bool {
		ack, err = publish(ctx, js, "origin.x", numbered(stored+1), time.Second)
		return err == nil
	})
	t.Logf("publishes work again %s after the space was freed; the client reconnected %d times",
		time.Since(freed).Round(time.Millisecond), nc.Reconnects)
	if ack.Sequence != stored+1 {
		t.Errorf("the first message after the outage has sequence %d, want %d", ack.Sequence, stored+1)
	}
	checkKept(t, ctx, origin, stored+1)
	// The mirror picks up where the disk stopped it.
	natstest.Eventually(t, time.Minute, "the mirror to catch up", func() bool {
		info, err := mirror.Info(ctx)
		return err == nil && info.State.Msgs == stored+1
	})
	t.Logf("the mirror caught up %s after the space was freed", time.Since(freed).Round(time.Millisecond))
	checkKept(t, ctx, mirror, stored+1)

	natstest.Eventually(t, 30*time.Second, "the supervisor to report JetStream up", func() bool { return sup.Status().Up })
	t.Logf("the supervisor had JetStream back %s after the space was freed", sup.Status().Since.Sub(freed).Round(time.Millisecond))
	checkReported(t, seen.list(), broker.ErrJetStreamOff, broker.ErrStreamWrite)
	out := logs.String()
	down := logLine(t, out, "embedded JetStream is down")
	for _, want := range []string{"level=ERROR", "store_dir=" + store, "free_bytes="} {
		if !strings.Contains(down, want) {
			t.Errorf("the outage log line lacks %q: %s", want, down)
		}
	}
	logLine(t, out, "embedded JetStream is back")
}
