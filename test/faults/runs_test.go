package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
)

// script is the command a message runs: it logs its start with the real
// time, the message ID, the node and its pid to runsLog, sleeps, prints
// the ID (the reply), and logs its end as its very last action, so that an
// end line means the command is done but for the shell's exit. date runs
// in the command, so the times are the machine's, whatever clock the node
// was given.
func script(runsLog, id, node string, sleep time.Duration) string {
	line := func(kind string) string {
		return fmt.Sprintf(`echo "$(date +%%s.%%N) %s %s %s $$" >> %s`, kind, id, node, runsLog)
	}
	return fmt.Sprintf("%s; sleep %.1f; echo %s; %s", line("start"), sleep.Seconds(), id, line("end"))
}

// run is one execution of a message's command.
type run struct {
	id, node string
	pid      int
	start    time.Time
	end      time.Time // zero when it never ended
	alive    bool      // no end, and its process is still there
}

func (r *run) ended() bool { return !r.end.IsZero() }

// runsLog is the parsed runs log: every run of every message, and the
// raw lines per message for the evidence.
type runsLog struct {
	runs  map[string][]*run // by message ID, in start order
	lines map[string][]string
	bad   []string // lines that do not parse
}

// readRuns parses the runs log at path. alive says whether a pid still
// runs the command of a message (nil: never).
func readRuns(path string, alive func(pid int, id string) bool) (*runsLog, error) {
	rl := &runsLog{runs: map[string][]*run{}, lines: map[string][]string{}}
	fh, err := os.Open(path)
	if os.IsNotExist(err) {
		return rl, nil
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	open := map[string]*run{} // by id and pid
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) != 5 {
			rl.bad = append(rl.bad, line)
			continue
		}
		at, err1 := parseStamp(fields[0])
		pid, err2 := strconv.Atoi(fields[4])
		kind, id, node := fields[1], fields[2], fields[3]
		if err1 != nil || err2 != nil || (kind != "start" && kind != "end") {
			rl.bad = append(rl.bad, line)
			continue
		}
		rl.lines[id] = append(rl.lines[id], line)
		key := id + " " + fields[4]
		switch kind {
		case "start":
			r := &run{id: id, node: node, pid: pid, start: at}
			rl.runs[id] = append(rl.runs[id], r)
			open[key] = r
		case "end":
			if r := open[key]; r != nil {
				r.end = at
				delete(open, key)
			} else {
				rl.bad = append(rl.bad, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, r := range open {
		r.alive = alive != nil && alive(r.pid, r.id)
	}
	for _, rs := range rl.runs {
		slices.SortStableFunc(rs, func(a, b *run) int { return a.start.Compare(b.start) })
	}
	return rl, nil
}

// awaitEnd waits until a run on node (any node for "") appends its end
// line to the runs log at path, and reports whether one did before
// timeout. It polls every 2 ms, so that the caller can act within a few
// milliseconds of a command's end.
func awaitEnd(path, node string, timeout time.Duration) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	if _, err := fh.Seek(0, io.SeekEnd); err != nil {
		return false
	}
	var pending []byte
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, _ := fh.Read(buf)
		if n == 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			fields := strings.Fields(string(pending[:i]))
			pending = pending[i+1:]
			if len(fields) == 5 && fields[1] == "end" && (node == "" || fields[3] == node) {
				return true
			}
		}
	}
	return false
}

// parseStamp reads date's "%s.%N".
func parseStamp(s string) (time.Time, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	var nanos int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if nanos, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, err
		}
	}
	return time.Unix(secs, nanos), nil
}

// commandAlive reports whether pid is a live (not zombie) process whose
// command line names message id: the shell of one of its runs.
func commandAlive(pid int, id string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmdline), " "+id+" ")
}

// verdict is what the runs of one message say.
type verdict struct {
	runs        int
	ended       bool // some run ended: the command completed
	twice       string
	crashReruns int
	late        string // ran after its deadline
}

// judge reads the runs of one message. stops are the times the harness
// stopped nodes; fires is when its deadline's schedule fires (zero: no
// deadline that matters); timedOut says its delivery timed out.
func judge(runs []*run, stops []fleettest.Stop, fires time.Time, timedOut bool) verdict {
	v := verdict{runs: len(runs)}
	for _, r := range runs {
		v.ended = v.ended || r.ended()
	}
	for j := 1; j < len(runs) && v.twice == ""; j++ {
		next := runs[j]
		for _, prev := range runs[:j] {
			switch {
			case prev.ended() && !prev.end.After(next.start):
				v.twice = fmt.Sprintf("run %d started at %s, after run of pid %d ended at %s", j+1, stamp(next.start), prev.pid, stamp(prev.end))
				if s, ok := stoppedBetween(stops, prev.node, prev.end, next.start); ok {
					v.twice += fmt.Sprintf(" (%s got %s %s after that end)", s.Node, s.Signal, s.At.Sub(prev.end).Round(10*time.Microsecond))
				}
			case prev.ended():
				v.twice = fmt.Sprintf("run %d started at %s while run of pid %d ran (it ended at %s)", j+1, stamp(next.start), prev.pid, stamp(prev.end))
			case prev.alive:
				v.twice = fmt.Sprintf("run %d started at %s while run of pid %d (started %s) is still alive", j+1, stamp(next.start), prev.pid, stamp(prev.start))
			default:
				if _, ok := stoppedBetween(stops, prev.node, prev.start, next.start); !ok {
					v.twice = fmt.Sprintf("run %d started at %s after run of pid %d (started %s) died without an end while %s was not stopped",
						j+1, stamp(next.start), prev.pid, stamp(prev.start), prev.node)
				}
			}
			if v.twice != "" {
				break
			}
		}
		if v.twice == "" {
			v.crashReruns++
		}
	}
	switch {
	case timedOut && len(runs) > 0:
		v.late = fmt.Sprintf("ran %d times although its delivery timed out", len(runs))
	case !fires.IsZero() && len(runs) > 0 && runs[0].start.After(fires.Add(deadlineSlack)):
		v.late = fmt.Sprintf("first run started at %s, %s after the deadline fired at %s",
			stamp(runs[0].start), runs[0].start.Sub(fires).Round(time.Millisecond), stamp(fires))
	}
	return v
}

// deadlineSlack is how long after its deadline fired a claimed delivery
// may still take to start its command.
const deadlineSlack = 2 * time.Second

// stoppedBetween finds a stop of node that overlaps [from, to].
func stoppedBetween(stops []fleettest.Stop, node string, from, to time.Time) (fleettest.Stop, bool) {
	for _, s := range stops {
		if s.Node == node && !s.At.After(to) && !s.Until.Before(from) {
			return s, true
		}
	}
	return fleettest.Stop{}, false
}

func stamp(t time.Time) string { return t.UTC().Format("15:04:05.000") }
