package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/netfault"
)

var ships = []string{"ship1", "ship2"}

var (
	succeeded = []string{"succeeded"}
	timedOut  = []string{"delivery_timed_out"}
	either    = []string{"succeeded", "delivery_timed_out"}
)

// farDeadline is the deliveryDeadline of messages that must not miss it.
const farDeadline = 3600

// TestFaults runs every scenario, then logs the table of all of them.
func TestFaults(t *testing.T) {
	sz := suite(t)
	start := time.Now()
	results.mu.Lock()
	results.rows = nil // -count may run the suite more than once
	results.mu.Unlock()
	t.Cleanup(func() {
		results.mu.Lock()
		defer results.mu.Unlock()
		if len(results.rows) == 0 {
			return
		}
		tab := fmt.Sprintf("steward fault suite (%s), %s:\n%s", sz.name, time.Since(start).Round(time.Second), table(results.rows))
		t.Log("\n" + tab)
		if path := os.Getenv("STEWARD_FAULTS_TABLE"); path != "" {
			if err := os.WriteFile(path, []byte(tab), 0o644); err != nil {
				t.Errorf("write the table: %v", err)
			}
		}
	})
	for _, sc := range []struct {
		name string
		run  func(*testing.T, sizes)
	}{
		{"ship-kill", shipKills},
		{"central-kill", centralKills},
		{"central-kill-memory-queues", centralKillsMemoryQueues},
		{"link-flap", linkFlaps},
		{"consumer-deleted", consumerDeleted},
		{"broker-wipe", brokerWipe},
		{"clock-skew", clockSkew},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.run(t, sz) })
	}
}

// startFleet starts central and the ships; ships in proxied go through a
// proxy.
func startFleet(t testing.TB, proxied ...string) *fleet {
	t.Helper()
	return startFleetWith(t, nil, proxied...)
}

// startFleetWith is startFleet with flags for central.
func startFleetWith(t testing.TB, centralFlags []string, proxied ...string) *fleet {
	t.Helper()
	f := newFleet(t)
	for _, node := range proxied {
		f.proxy(node)
	}
	f.setExtra(central, centralFlags...)
	f.Start(central)
	for _, node := range ships {
		f.Start(node)
	}
	return f
}

// background runs fn in a goroutine until the returned stop is called.
func background(fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { fn(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// finishSending re-sends until every message is accepted (or the settle
// time passed) and fails t for those that never were.
func finishSending(t testing.TB, s *sender, sz sizes) {
	t.Helper()
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, r := range s.refused {
			t.Errorf("VIOLATION: steward send refused a message the harness sent: %s", r)
		}
	}()
	if left := s.finish(sz.settle); left > 0 {
		t.Errorf("%d messages were never accepted by steward send", left)
		for _, m := range s.unaccepted() {
			t.Logf("not accepted: %s after %d tries: %s", m.ID, m.tries, m.lastError)
		}
	}
}

// inFlight counts the runs on node that started and have not ended.
func inFlight(f *fleet, node string) int {
	rl, err := readRuns(f.runsLog, commandAlive)
	if err != nil {
		return 0
	}
	n := 0
	for _, rs := range rl.runs {
		for _, r := range rs {
			if r.node == node && r.alive {
				n++
			}
		}
	}
	return n
}

// perShip makes one message per node in nodes with sleeps in [lo, hi].
func perShip(ids *idGen, nodes []string, lo, hi time.Duration, deadline int, expect []string) []*msg {
	var out []*msg
	for _, node := range nodes {
		out = append(out, &msg{ID: ids.next(), Node: node, Sleep: sleepBetween(lo, hi), Deadline: deadline, Expect: expect})
	}
	return out
}

// shipKills SIGKILLs a random ship and starts it again, while messages
// keep coming to both ships. The kills land while commands run, and not
// within 150 ms of any command's end on that ship; in the full run every
// other kill lands instead within milliseconds of a command's end line,
// while its outcome is on its way to the ledger, the reply and the status.
func shipKills(t *testing.T, sz sizes) {
	f := startFleet(t)
	s := newSender(f)
	ids := &idGen{prefix: "sk"}
	stopLoad := background(func(ctx context.Context) {
		s.load(ctx, 500*time.Millisecond, func() []*msg {
			return perShip(ids, ships, 200*time.Millisecond, 4*time.Second, farDeadline, succeeded)
		})
	})
	idle, atEnd := 0, 0
	for i := range sz.shipKills {
		node := ships[rand.IntN(len(ships))]
		if !fleettest.Poll(10*time.Second, func() bool { return inFlight(f, node) > 0 }) {
			idle++
		}
		if sz.endKills && i%2 == 1 && awaitEnd(f.runsLog, node, 10*time.Second) {
			atEnd++
		} else {
			time.Sleep(sleepBetween(0, 1500*time.Millisecond))
			sleeps := map[string]time.Duration{}
			for _, m := range s.messages() {
				sleeps[m.ID] = m.Sleep
			}
			for range 100 {
				if !nearEnd(f, node, sleeps, 150*time.Millisecond) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		f.Stop(node, syscall.SIGKILL)
		time.Sleep(sleepBetween(200*time.Millisecond, 2*time.Second))
		f.Start(node)
		time.Sleep(sleepBetween(500*time.Millisecond, 2*time.Second))
		f.checkAlive()
	}
	stopLoad()
	finishSending(t, s, sz)
	note := fmt.Sprintf("%d SIGKILLs of a random ship while commands run (%d found none running), %d of them within milliseconds after a command's end line, the others not within 150 ms of any command's end; commands sleep 0.2-4 s, retries 1000",
		sz.shipKills, idle, atEnd)
	report(t, settleAndCount(f, sz, "ship SIGKILL", s.messages(), note, ships))
}

// nearEnd reports whether a run on node is within margin of its end: it
// has run its sleep less margin and not logged its end, or it logged its
// end less than margin ago.
func nearEnd(f *fleet, node string, sleeps map[string]time.Duration, margin time.Duration) bool {
	rl, err := readRuns(f.runsLog, nil)
	if err != nil {
		return false
	}
	now := time.Now()
	for id, rs := range rl.runs {
		for _, r := range rs {
			switch {
			case r.node != node:
			case r.ended() && now.Sub(r.end) < margin:
				return true
			case !r.ended() && now.Sub(r.start) > sleeps[id]-margin && now.Sub(r.start) < sleeps[id]+time.Second:
				return true
			}
		}
	}
	return false
}

// centralKills SIGKILLs central, and with it the broker, while messages
// keep coming; sends that fail are sent again with the same IDs.
func centralKills(t *testing.T, sz sizes) {
	centralKillsWith(t, sz, "central+broker SIGKILL", nil)
}

// centralKillsMemoryQueues is centralKills with the fleet's queues in the
// broker's memory (--queue-storage memory): every restart of the broker
// forgets every queue, and each ship and central make theirs again.
func centralKillsMemoryQueues(t *testing.T, sz sizes) {
	centralKillsWith(t, sz, "central+broker SIGKILL, queues in memory", []string{"--queue-storage", "memory"})
}

func centralKillsWith(t *testing.T, sz sizes, label string, centralFlags []string) {
	f := startFleetWith(t, centralFlags)
	s := newSender(f)
	ids := &idGen{prefix: "ck"}
	stopLoad := background(func(ctx context.Context) {
		s.load(ctx, 500*time.Millisecond, func() []*msg {
			return perShip(ids, ships, 500*time.Millisecond, 2*time.Second, farDeadline, succeeded)
		})
	})
	atEnd, atReply := 0, 0
	for i := range sz.centralKills {
		time.Sleep(sleepBetween(3*time.Second, 6*time.Second))
		switch {
		case i%3 == 1 && awaitEnd(f.runsLog, "", 10*time.Second):
			// A command just ended: its reply and status are on their
			// way to the broker, and to central.
			atEnd++
			time.Sleep(sleepBetween(0, 30*time.Millisecond))
		case i%3 == 2 && sz.endKills && awaitReply(f, 10*time.Second):
			// Central just wrote a reply file: the reply's outcome is on
			// its way to central's ledger.
			atReply++
		}
		f.Stop(central, syscall.SIGKILL)
		time.Sleep(sleepBetween(time.Second, 3*time.Second))
		f.Start(central)
		f.checkAlive()
	}
	time.Sleep(3 * time.Second)
	stopLoad()
	finishSending(t, s, sz)
	s.mu.Lock()
	note := fmt.Sprintf("%d SIGKILLs of central with its broker (%d within 30 ms of a command's end, %d within milliseconds of a reply file's creation); %d send calls, %d without any receipt (their messages sent again with the same IDs), half of them from central's folder (outbox) and half from a plain folder",
		sz.centralKills, atEnd, atReply, s.calls, s.failures)
	s.mu.Unlock()
	if centralFlags != nil {
		// The queues must have been what the scenario says.
		for _, node := range ships {
			inMemory := false
			found := fleettest.Poll(30*time.Second, func() bool {
				c, err := f.jetStream().Consumer(t.Context(), messagesStream, node)
				inMemory = err == nil && c.CachedInfo().Config.MemoryStorage
				return err == nil
			})
			if !found {
				t.Fatalf("%s has no queue on the broker", node)
			}
			if !inMemory {
				t.Fatalf("%s's queue is on file; central runs with %v", node, centralFlags)
			}
		}
	}
	report(t, settleAndCount(f, sz, label, s.messages(), note, ships))
}

// awaitReply waits until a new reply file appears on central, polling
// every 2 ms, and reports whether one did before timeout.
func awaitReply(f *fleet, timeout time.Duration) bool {
	list := func() map[string]bool {
		seen := map[string]bool{}
		for _, node := range ships {
			entries, _ := os.ReadDir(filepath.Join(f.Dir(central), "data", "faults", node))
			for _, e := range entries {
				seen[node+"/"+e.Name()] = true
			}
		}
		return seen
	}
	before := list()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for name := range list() {
			if !before[name] {
				return true
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// linkFlaps cuts ship1's link every two seconds, in each mode, while
// messages keep coming to both ships (ship2's link is never cut).
func linkFlaps(t *testing.T, sz sizes) {
	f := startFleet(t, "ship1")
	p := f.proxy("ship1")
	phases := []struct {
		mode netfault.Mode
		dur  time.Duration
	}{
		{netfault.Reset, sz.flapPerMode},
		{netfault.DropToTarget, sz.flapPerMode},
		{netfault.DropToClient, sz.flapPerMode},
	}
	if sz.blackhole > 0 {
		phases = append(phases, struct {
			mode netfault.Mode
			dur  time.Duration
		}{netfault.Blackhole, sz.blackhole})
	}
	for i, ph := range phases {
		s := newSender(f)
		ids := &idGen{prefix: fmt.Sprintf("lf%d", i)}
		stopLoad := background(func(ctx context.Context) {
			s.load(ctx, 500*time.Millisecond, func() []*msg {
				return perShip(ids, []string{"ship1", "ship1", "ship2"}, 500*time.Millisecond, 3*time.Second, farDeadline, succeeded)
			})
		})
		before := p.Stats()
		ctx, cancel := context.WithTimeout(context.Background(), ph.dur)
		p.Flap(ctx, ph.mode, 2*time.Second)
		cancel()
		after := p.Stats()
		// A little more load on the restored link, then let it settle.
		time.Sleep(2 * time.Second)
		stopLoad()
		finishSending(t, s, sz)
		note := fmt.Sprintf("ship1's link %s every 2 s for %s (%d cuts, %d bytes dropped to the broker, %d to the node); ship2 not cut",
			ph.mode, ph.dur, after.Cuts-before.Cuts, after.DroppedToTarget-before.DroppedToTarget, after.DroppedToClient-before.DroppedToClient)
		report(t, settleAndCount(f, sz, "link flap "+ph.mode.String(), s.messages(), note, ships))
	}
}

// consumerDeleted deletes ship1's consumer while ship1 is away (its link
// cut, or its process stopped or killed) with commands in flight, and
// sends it more messages meanwhile.
func consumerDeleted(t *testing.T, sz sizes) {
	f := startFleet(t, "ship1")
	p := f.proxy("ship1")
	s := newSender(f)
	ids := &idGen{prefix: "cd"}
	// ship2 gets a steady trickle all along.
	stopLoad := background(func(ctx context.Context) {
		s.load(ctx, time.Second, func() []*msg {
			return perShip(ids, []string{"ship2"}, 500*time.Millisecond, 2*time.Second, farDeadline, succeeded)
		})
	})
	ways := []string{"link cut", "SIGTERM", "SIGKILL"}
	deleted := 0
	var rounds []*msg
	for i := range sz.consumerRounds {
		way := ways[i%len(ways)]
		inFlightBatch := perShip(ids, []string{"ship1", "ship1", "ship1", "ship1"}, 2*time.Second, 4*time.Second, farDeadline, succeeded)
		s.send(inFlightBatch, nil)
		fleettest.Poll(10*time.Second, func() bool { return inFlight(f, "ship1") > 0 })
		f.Note("ship1", "going away: %s", way)
		switch way {
		case "link cut":
			p.Cut(netfault.Reset)
		case "SIGTERM":
			f.Stop("ship1", syscall.SIGTERM)
		case "SIGKILL":
			f.Stop("ship1", syscall.SIGKILL)
		}
		// Stored while the old consumer is there, never delivered to it.
		waiting := perShip(ids, []string{"ship1", "ship1"}, 500*time.Millisecond, 1500*time.Millisecond, farDeadline, succeeded)
		s.send(waiting, nil)
		time.Sleep(time.Second)
		if f.deleteConsumer("ship1") {
			deleted++
		}
		f.Note("ship1", "consumer deleted while away")
		// Stored while there is no consumer.
		away := perShip(ids, []string{"ship1", "ship1", "ship1", "ship1"}, 500*time.Millisecond, 1500*time.Millisecond, farDeadline, succeeded)
		s.send(away, nil)
		time.Sleep(sleepBetween(2*time.Second, 4*time.Second))
		if way == "link cut" {
			p.Restore()
		} else {
			f.Start("ship1")
		}
		f.Note("ship1", "back")
		rounds = append(append(append(rounds, inFlightBatch...), waiting...), away...)
		if !fleettest.Poll(60*time.Second, func() bool { ok, _ := settled(f, rounds); return ok }) {
			_, why := settled(f, rounds)
			t.Logf("round %d (%s) not settled after 60s: %s", i+1, way, why)
		}
		f.checkAlive()
	}
	stopLoad()
	finishSending(t, s, sz)
	note := fmt.Sprintf("%d rounds (link cut, SIGTERM, SIGKILL in turn): 4 commands in flight on ship1 when it goes away, 2 messages sent to it while away, its consumer deleted (%d times it existed), 4 more sent; ship2 gets a trickle",
		sz.consumerRounds, deleted)
	report(t, settleAndCount(f, sz, "consumer deleted", s.messages(), note, ships))
}

// brokerWipe stops central, deletes its broker's store and starts it
// again: an empty broker. Only messages sent after central stopped are
// counted: those stored before are gone by definition (the harness lets
// them finish before the wipe, and does not count them).
func brokerWipe(t *testing.T, sz sizes) {
	f := startFleet(t)
	var rows []*row
	pre := 0
	for w := range sz.wipes {
		// Work before the wipe, finished, so the ships' queues have moved on.
		before := newSender(f)
		preIDs := &idGen{prefix: fmt.Sprintf("bp%d", w)}
		for range 5 {
			before.send(perShip(preIDs, ships, 200*time.Millisecond, time.Second, farDeadline, succeeded), nil)
		}
		finishSending(t, before, sz)
		pre += len(before.messages())
		if !fleettest.Poll(60*time.Second, func() bool { ok, _ := settled(f, before.messages()); return ok }) {
			_, why := settled(f, before.messages())
			t.Logf("wipe %d: work before it not settled: %s", w+1, why)
		}
		// ship1 stops in order once, so it has kept its ack floor.
		f.Stop("ship1", syscall.SIGTERM)
		f.Start("ship1")

		sig := syscall.SIGTERM
		if w%2 == 1 {
			sig = syscall.SIGKILL
		}
		f.Stop(central, sig)
		s := newSender(f)
		ids := &idGen{prefix: fmt.Sprintf("bw%d", w)}
		stopLoad := background(func(ctx context.Context) {
			s.load(ctx, 500*time.Millisecond, func() []*msg {
				return perShip(ids, ships, 200*time.Millisecond, 1500*time.Millisecond, farDeadline, succeeded)
			})
		})
		time.Sleep(time.Second)
		if err := os.RemoveAll(filepath.Join(f.Dir(central), "data", ".steward", "jetstream")); err != nil {
			t.Fatal(err)
		}
		f.Note(central, "broker store deleted")
		f.Start(central)
		time.Sleep(10 * time.Second)
		stopLoad()
		finishSending(t, s, sz)
		rows = append(rows, settleAndCount(f, sz, fmt.Sprintf("wipe %d (%s)", w+1, sig), s.messages(), "", ships))
	}
	note := fmt.Sprintf("%d restart(s) of central on an empty store (SIGTERM, SIGKILL in turn); counts only messages sent after central stopped (sent while it was down, queued or retried, and after it came back); the %d sent before the wipes finished before them and are not counted (their records went with the store)",
		sz.wipes, pre)
	report(t, merge("broker on empty store", note, rows...))
}

// clockSkew runs the ships on clocks ten minutes off (ship1 behind, ship2
// ahead; the other way round in the next cycle) with short delivery
// deadlines: messages to running ships must run, messages to stopped
// ships must time out and never run, and messages whose deadline races
// the ship's start must do one or the other, consistently.
func clockSkew(t *testing.T, sz sizes) {
	f := newFleet(t)
	f.Start(central)
	s := newSender(f)
	ids := &idGen{prefix: "cs"}
	offsets := []string{"-10m", "10m"}
	for c := range sz.skewCycles {
		for i, node := range ships {
			f.setExtra(node, "--clock-offset", offsets[(i+c)%2])
			f.Stop(node, syscall.SIGTERM)
			f.Start(node)
		}
		// Running ships: deadline 30 s, must succeed.
		up := perShip(ids, []string{"ship1", "ship1", "ship2", "ship2"}, 500*time.Millisecond, 1500*time.Millisecond, 30, succeeded)
		s.send(up, nil)
		fleettest.Poll(60*time.Second, func() bool { ok, _ := settled(f, up); return ok })
		// Stopped ships: deadline 3 s, must time out and never run.
		for _, node := range ships {
			f.Stop(node, syscall.SIGTERM)
		}
		down := perShip(ids, []string{"ship1", "ship1", "ship2", "ship2"}, 500*time.Millisecond, time.Second, 3, timedOut)
		s.send(down, nil)
		fleettest.Poll(60*time.Second, func() bool { ok, _ := settled(f, down); return ok })
		// Racing: deadlines of 1 to 6 s, the ships start 3.5 to 4.5 s
		// after: the first time out, the last run, those between race.
		var race []*msg
		for d := 1; d <= 6; d++ {
			race = append(race, perShip(ids, ships[d%2:d%2+1], 500*time.Millisecond, time.Second, d, either)...)
		}
		s.send(race, nil)
		time.Sleep(sleepBetween(3500*time.Millisecond, 4500*time.Millisecond))
		for _, node := range ships {
			f.Start(node)
		}
		// Running again: deadline 5 s, must succeed.
		after := perShip(ids, []string{"ship1", "ship2"}, 500*time.Millisecond, time.Second, 5, succeeded)
		s.send(after, nil)
		fleettest.Poll(60*time.Second, func() bool { ok, _ := settled(f, after); return ok })
		f.checkAlive()
	}
	finishSending(t, s, sz)
	note := fmt.Sprintf("%d cycle(s); ships' clocks -10m/+10m (swapped each cycle); per cycle 4 messages to running ships (deadline 30 s, must succeed), 4 to stopped ships (3 s, must time out, never run), 6 racing the ships' start 3.5-4.5 s later (deadlines 1-6 s, either, consistently), 2 after (5 s, must succeed)",
		sz.skewCycles)
	report(t, settleAndCount(f, sz, "clock ±10 min", s.messages(), note, ships))
}
