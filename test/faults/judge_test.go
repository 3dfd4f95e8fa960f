package faults

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
)

// These tests check the harness's own counting on made-up runs logs and
// histories. They need no steward process, so they run in every test run.

func TestJudgeRuns(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	ended := func(pid int, from, to float64) *run {
		return &run{node: "ship1", pid: pid, start: at(from), end: at(to)}
	}
	died := func(pid int, from float64) *run { return &run{node: "ship1", pid: pid, start: at(from)} }
	alive := func(pid int, from float64) *run { return &run{node: "ship1", pid: pid, start: at(from), alive: true} }
	kill := fleettest.Stop{Node: "ship1", At: at(5), Until: at(5.1), Signal: syscall.SIGKILL}
	otherKill := fleettest.Stop{Node: "ship2", At: at(5), Until: at(5.1), Signal: syscall.SIGKILL}

	for _, tc := range []struct {
		name     string
		runs     []*run
		stops    []fleettest.Stop
		fires    time.Time
		timedOut bool
		twice    string // part of the reason, "" for none
		reruns   int
		late     bool
		hasEnded bool
	}{
		{name: "one run", runs: []*run{ended(1, 1, 3)}, hasEnded: true},
		{name: "rerun after its node was killed", runs: []*run{died(1, 1), ended(2, 8, 10)}, stops: []fleettest.Stop{kill}, reruns: 1, hasEnded: true},
		{name: "rerun after a kill of another node", runs: []*run{died(1, 1), ended(2, 8, 10)}, stops: []fleettest.Stop{otherKill}, twice: "died without an end", hasEnded: true},
		{name: "run again after it ended", runs: []*run{ended(1, 1, 3), ended(2, 8, 10)}, twice: "after run of pid 1 ended", hasEnded: true},
		{name: "run again after it ended and its node was killed", runs: []*run{ended(1, 1, 3), ended(2, 8, 10)}, stops: []fleettest.Stop{kill}, twice: "got killed", hasEnded: true},
		{name: "overlap with a run that ended later", runs: []*run{ended(1, 1, 9), ended(2, 3, 10)}, twice: "while run of pid 1 ran", hasEnded: true},
		{name: "overlap with a run still alive", runs: []*run{alive(1, 1), ended(2, 3, 10)}, stops: []fleettest.Stop{kill}, twice: "still alive", hasEnded: true},
		{name: "two kills, two reruns", runs: []*run{died(1, 1), died(2, 6), ended(3, 12, 13)},
			stops: []fleettest.Stop{kill, {Node: "ship1", At: at(9), Until: at(9.1), Signal: syscall.SIGKILL}}, reruns: 2, hasEnded: true},
		{name: "in time", runs: []*run{ended(1, 1, 3)}, fires: at(2), hasEnded: true},
		{name: "first run after the deadline fired", runs: []*run{ended(1, 5, 6)}, fires: at(2), late: true, hasEnded: true},
		{name: "ran although timed out", runs: []*run{ended(1, 1, 2)}, timedOut: true, late: true, hasEnded: true},
		{name: "timed out, never ran", timedOut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.runs, tc.stops, tc.fires, tc.timedOut)
			switch {
			case tc.twice == "" && v.twice != "":
				t.Errorf("executed twice: %s", v.twice)
			case tc.twice != "" && !strings.Contains(v.twice, tc.twice):
				t.Errorf("executed twice %q, want it to say %q", v.twice, tc.twice)
			}
			if tc.twice == "" && v.crashReruns != tc.reruns {
				t.Errorf("%d reruns, want %d", v.crashReruns, tc.reruns)
			}
			if (v.late != "") != tc.late {
				t.Errorf("late %q, want %v", v.late, tc.late)
			}
			if v.ended != tc.hasEnded {
				t.Errorf("ended %v, want %v", v.ended, tc.hasEnded)
			}
		})
	}
}

func TestReadRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.log")
	log := strings.Join([]string{
		"1000.500000000 start a1 ship1 10",
		"1000.600000000 start a2 ship2 11",
		"1002.5 end a1 ship1 10",
		"1003.000000001 start a1 ship1 12",
		"garbage",
		"1004.000000000 end a9 ship1 99",
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	rl, err := readRuns(path, func(pid int, id string) bool { return pid == 11 })
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := rl.runs["a1"], rl.runs["a2"]
	if len(a1) != 2 || !a1[0].ended() || a1[1].ended() || a1[1].alive {
		t.Errorf("a1: %+v %+v", a1[0], a1[1])
	}
	if got := a1[0].end.Sub(a1[0].start); got != 2*time.Second {
		t.Errorf("a1's first run took %s, want 2s", got)
	}
	if len(a2) != 1 || a2[0].ended() || !a2[0].alive || a2[0].node != "ship2" {
		t.Errorf("a2: %+v", a2[0])
	}
	if len(rl.bad) != 2 {
		t.Errorf("lines not understood: %q, want the garbage and the end without a start", rl.bad)
	}
	if len(rl.lines["a1"]) != 3 {
		t.Errorf("a1's lines: %q", rl.lines["a1"])
	}
}

func TestChangedAfterTerminal(t *testing.T) {
	for _, tc := range []struct {
		states []string
		want   int
	}{
		{[]string{"pending", "running", "succeeded"}, 0},
		{[]string{"pending", "running", "succeeded", "succeeded"}, 1},
		{[]string{"pending", "delivery_timed_out", "running", "succeeded"}, 2},
		{[]string{"pending", "succeeded", "<delete>"}, 1},
		{[]string{"pending", "running"}, 0},
	} {
		h := &history{states: tc.states, recs: make([]record, len(tc.states))}
		if got := h.changedAfterTerminal(); len(got) != tc.want {
			t.Errorf("%v: changed %v, want %d entries", tc.states, got, tc.want)
		}
	}
}

func TestScriptLogsStartAndEnd(t *testing.T) {
	got := script("/x/runs.log", "id7", "ship1", 1500*time.Millisecond)
	want := `echo "$(date +%s.%N) start id7 ship1 $$" >> /x/runs.log; sleep 1.5; echo id7; echo "$(date +%s.%N) end id7 ship1 $$" >> /x/runs.log`
	if got != want {
		t.Errorf("script:\n got %s\nwant %s", got, want)
	}
}
