package redteam

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stewardfleet/steward/internal/fleettest"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/stream"
)

// count is one case's tally.
type count struct {
	attempts, broker, node, accepted, reported int
}

// stored is an attempt that got into a node's queue: the node must refuse it.
type stored struct {
	what string
	node string // whose queue
	seq  uint64 // stream sequence
	key  string // delivery key the node audits it under ("" when it can only be matched by seq)
	id   string // message ID, as the node's error report names it
	want string // what the refusal must say ("" for any refusal)
}

// env is what a case attacks with and counts into.
type env struct {
	t            *testing.T
	f            *fleet
	ship2, relay *conn // stolen ship2's seed; a broker insider no node trusts
	harness      *conn // central's key: the suite's own look at the broker
	n            count
	queued       []stored
	goodSent     int // good messages sent while the case ran
	goodOK       int // of them, succeeded with their reply written
}

// redTeamCase is one attack. known, when set, skips it with that reason:
// a weakness production code must fix (STEWARD_REDTEAM_KNOWN=1 runs it).
type redTeamCase struct {
	name  string
	known string
	run   func(e *env)
}

var cases = []redTeamCase{
	{"no key", "", noKey},
	{"stolen ship: read another node's", "", stolenShipReads},
	{"stolen ship: re-point its own consumer", "", stolenShipRetargets},
	{"stolen ship: write another node's", "", stolenShipWrites},
	{"stolen ship: streams and consumers", "", stolenShipLayout},
	{"forged sender (stolen ship)", "", forgedSender},
	{"unsigned / wrong key (broker insider)", "", insider},
	{"tampered field (broker insider)", "", tampered},
	{"path traversal (stolen ship)", "", pathTraversal},
	{"planted symlinks", "", symlinks},
	{"oversize (stolen ship)", "", oversize},
	{"answer for another node (stolen ship)", "", answerForAnother},
	{"unsolicited reply (stolen ship)", "", unsolicitedReply},
	{"unsolicited reply after a forged status record (stolen ship)", "", unsolicitedWithForgedRecord},
	{"reply dedup ID taken (stolen ship)", "", replyDedupTaken},
	{"replayed capture (broker insider)", "", replayedCapture},
	{"flood (stolen ship)", "", flood},
	// Last: it changes the fleet's keys.
	{"revoked key (broker insider)", "", revokedKey},
}

func TestRedTeam(t *testing.T) {
	if testing.Short() {
		t.Skip("red-team suite: runs a fleet of steward processes")
	}
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.Start("ship2")
	f.WaitOnline("central", "ship1", "ship2")
	base := env{t: t, f: f, ship2: f.dial(t, "ship2"), relay: f.dial(t, "relay"), harness: f.dial(t, "central")}

	var rows []string
	var total count
	var goodSent, goodOK int
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.known != "" && os.Getenv("STEWARD_REDTEAM_KNOWN") == "" {
				rows = append(rows, fmt.Sprintf("%s\t-\t-\t-\t-\t-\tskipped (known weakness)", c.name))
				t.Skip("known: " + c.known)
			}
			e := base
			e.t, e.n, e.queued = t, count{}, nil
			c.run(&e)
			e.judge()
			e.checkMarkers()
			total.attempts += e.n.attempts
			total.broker += e.n.broker
			total.node += e.n.node
			total.accepted += e.n.accepted
			total.reported += e.n.reported
			goodSent += e.goodSent
			goodOK += e.goodOK
			rows = append(rows, fmt.Sprintf("%s\t%d\t%d\t%d\t%d\t%d\t", c.name, e.n.attempts, e.n.broker, e.n.node, e.n.reported, e.n.accepted))
			if e.n.accepted > 0 {
				t.Errorf("%d of %d attempts accepted", e.n.accepted, e.n.attempts)
			}
		})
	}
	f.checkState(t)

	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "case\tattempts\trefused by broker\trefused by node\treported to central\taccepted\t")
	for _, r := range rows {
		fmt.Fprintln(w, r)
	}
	fmt.Fprintf(w, "total\t%d\t%d\t%d\t%d\t%d\t\n", total.attempts, total.broker, total.node, total.reported, total.accepted)
	w.Flush()
	fmt.Fprintf(&b, "good messages sent while attacked: %d sent, %d succeeded with their reply written, %d lost\n", goodSent, goodOK, goodSent-goodOK)
	t.Logf("red-team summary:\n%s", b.String())
	if file := os.Getenv("STEWARD_REDTEAM_REPORT"); file != "" {
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// refusedByBroker counts an attempt the broker refused.
func (e *env) refusedByBroker(what, why string) {
	e.t.Helper()
	e.n.attempts++
	e.n.broker++
	e.t.Logf("%s: refused by the broker: %s", what, why)
}

// acceptedByBroker counts an attempt the broker carried out that it must
// have refused.
func (e *env) acceptedByBroker(what, how string) {
	e.t.Helper()
	e.n.attempts++
	e.n.accepted++
	e.t.Errorf("%s: the broker let it through: %s", what, how)
}

// mustRefuse sends a request the broker must refuse outright (anything
// but a message into a queue).
func (e *env) mustRefuse(c *conn, what, subj string, body []byte) {
	e.t.Helper()
	a := c.request(e.t, subj, nil, body)
	switch {
	case a.refused != "":
		e.refusedByBroker(what, a.refused)
	case apiError(a.msg.Data) != "":
		e.refusedByBroker(what, apiError(a.msg.Data))
	default:
		e.acceptedByBroker(what, fmt.Sprintf("answered on %s: %.200s", a.msg.Subject, a.msg.Data))
	}
}

// publish puts a message for node into its queue as c. What the broker
// refuses is counted here; what it stores the node must refuse (judge).
func (e *env) publish(c *conn, what, node string, m any, want string) {
	e.t.Helper()
	var data []byte
	switch v := m.(type) {
	case []byte:
		data = v
	default:
		data = encode(e.t, v)
	}
	id, key := "", ""
	hdr := nats.Header{}
	if msg, ok := m.(*message.Message); ok {
		id = msg.ID
		key = message.DeliveryID(msg.ID, node)
		if msg.Reply != nil {
			key = msg.Reply.DeliveryID + ".reply." + fmt.Sprint(msg.Reply.Chunk)
			if !strings.HasPrefix(msg.Reply.DeliveryID, msg.ID+".") {
				key = "" // it answers a real delivery, whose own reply is audited under that key
			}
		}
		if message.ValidID(msg.ID) == nil && msg.Reply == nil {
			hdr.Set("Nats-Msg-Id", key)
		}
	}
	a := c.request(e.t, stream.MessageSubject(node), hdr, data)
	if a.refused != "" {
		e.refusedByBroker(what, a.refused)
		return
	}
	var ack struct {
		Stream    string `json:"stream"`
		Seq       uint64 `json:"seq"`
		Duplicate bool   `json:"duplicate"`
	}
	if err := apiError(a.msg.Data); err != "" {
		e.refusedByBroker(what, err)
		return
	}
	if err := decodeJSON(a.msg.Data, &ack); err != nil || ack.Seq == 0 || ack.Duplicate {
		e.t.Fatalf("%s: unexpected answer %q (%v)", what, a.msg.Data, err)
	}
	e.queued = append(e.queued, stored{what: what, node: node, seq: ack.Seq, key: key, id: id, want: want})
}

// judge waits for each node to deal with every message that got into its
// queue, and counts what it refused and what it accepted. A message the
// node settled without an audited refusal counts as accepted.
func (e *env) judge() {
	e.t.Helper()
	type result struct{ verdict, reason string }
	results := make([]result, len(e.queued))
	left := len(e.queued)
	fleettest.Eventually(e.t, 90*time.Second, "the nodes to deal with every message that got in", func() bool {
		floors, audits := map[string]uint64{}, map[string][]auditLine{}
		for i, s := range e.queued {
			if results[i].verdict != "" {
				continue
			}
			if _, ok := floors[s.node]; !ok {
				floors[s.node] = e.harness.ackFloor(e.t, s.node) // before the audit: what it settled is audited
				audits[s.node] = e.f.audit(s.node)
			}
			v, why := verdict(audits[s.node], s)
			if v == "" && floors[s.node] >= s.seq {
				v, why = "accepted", "settled without a refusal in the audit log"
			}
			if v != "" {
				results[i] = result{v, why}
				left--
			}
		}
		return left == 0
	})
	reported := make([]bool, len(e.queued))
	fleettest.Eventually(e.t, 60*time.Second, "every refusal reported to central", func() bool {
		logs, missing := map[string]string{}, 0
		for i, s := range e.queued {
			if reported[i] || results[i].verdict != "refused" {
				continue
			}
			if _, ok := logs[s.node]; !ok {
				logs[s.node] = e.f.errorLog(s.node)
			}
			reported[i] = mentionsSeq(logs[s.node], s.seq) ||
				s.id != "" && strings.Contains(logs[s.node], "message "+s.id)
			if !reported[i] {
				missing++
			}
		}
		return missing == 0
	})
	for i, s := range e.queued {
		e.n.attempts++
		r := results[i]
		if r.verdict != "refused" {
			e.n.accepted++
			e.t.Errorf("%s: %s accepted it (%s)", s.what, s.node, r.reason)
			continue
		}
		e.n.node++
		if reported[i] {
			e.n.reported++
		}
		if s.want != "" && !strings.Contains(r.reason, s.want) {
			e.t.Errorf("%s: %s refused it, but not for %q: %s", s.what, s.node, s.want, r.reason)
		}
		e.t.Logf("%s: refused by %s: %.300s", s.what, s.node, r.reason)
	}
}

// mentionsSeq reports whether a refusal's text names stream sequence seq
// ("(stream sequence 12)" or "(stream sequence 12, delivery …)").
func mentionsSeq(text string, seq uint64) bool {
	at := fmt.Sprintf("(stream sequence %d", seq)
	return strings.Contains(text, at+")") || strings.Contains(text, at+",")
}

// verdict reads a node's audit log for s: "refused" (with the reason),
// "accepted", or "" when the node has not dealt with it yet.
func verdict(audit []auditLine, s stored) (string, string) {
	for _, l := range audit {
		if l.Event == "refused" && mentionsSeq(l.Error, s.seq) {
			return "refused", l.Error
		}
	}
	for _, l := range audit {
		switch {
		case s.key != "" && l.DeliveryID == s.key && l.Event == "processed":
			if l.Status == "succeeded" {
				return "accepted", "processed: " + l.Status
			}
			return "refused", l.Status + ": " + l.Error
		}
	}
	return "", ""
}
