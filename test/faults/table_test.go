package faults

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
)

// results are the rows of every scenario run so far, in order.
var results struct {
	mu   sync.Mutex
	rows []*row
}

// report adds r to the table, and fails t with the evidence when r counts
// a violation.
func report(t testing.TB, r *row) {
	t.Helper()
	results.mu.Lock()
	results.rows = append(results.rows, r)
	results.mu.Unlock()
	t.Logf("%s: sent %d, accepted %d, executed %d, twice %d, reruns %d, replies %d, terminal %d, changed %d, late %d, unexpected %d, lost %d",
		r.scenario, r.sent, r.accepted, r.executed, r.twice, r.reruns, r.replies, r.terminal, r.changed, r.late, r.unexpected, r.lost)
	if r.violations() > 0 {
		t.Errorf("%s: %d violations", r.scenario, r.violations())
		for _, e := range r.evidence {
			t.Log(e)
		}
	}
}

// merge adds up rows of the same scenario (rounds counted one by one).
func merge(scenario, note string, rows ...*row) *row {
	m := &row{scenario: scenario, note: note}
	for _, r := range rows {
		m.sent += r.sent
		m.accepted += r.accepted
		m.executed += r.executed
		m.twice += r.twice
		m.reruns += r.reruns
		m.replies += r.replies
		m.replyDoubled += r.replyDoubled
		m.terminal += r.terminal
		m.changed += r.changed
		m.late += r.late
		m.unexpected += r.unexpected
		m.lost += r.lost
		m.evidence = append(m.evidence, r.evidence...)
		m.note += "; [" + r.scenario + "] " + r.note
	}
	return m
}

// table renders rows as one table, with each row's note below it.
func table(rows []*row) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tsent\taccepted\texecuted\texecuted twice\treruns after crash\treplies written\treplies doubled\tterminal statuses\tchanged after terminal\tran after deadline\tunexpected end\tlost\t")
	total := &row{scenario: "total"}
	for _, r := range rows {
		cells := []int{r.sent, r.accepted, r.executed, r.twice, r.reruns, r.replies, r.replyDoubled, r.terminal, r.changed, r.late, r.unexpected, r.lost}
		fmt.Fprintf(tw, "%s\t%s\t\n", r.scenario, joinInts(cells))
		total = merge("total", "", total, r)
	}
	if len(rows) > 1 {
		cells := []int{total.sent, total.accepted, total.executed, total.twice, total.reruns, total.replies, total.replyDoubled, total.terminal, total.changed, total.late, total.unexpected, total.lost}
		fmt.Fprintf(tw, "%s\t%s\t\n", "total", joinInts(cells))
	}
	tw.Flush()
	b.WriteString("\nHow each scenario counts:\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- %s: %s\n", r.scenario, r.note)
	}
	return b.String()
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, "\t")
}
