package redteam

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stewardfleet/steward/internal/fleettest"
)

// record is what the suite reads of a status record.
type record struct {
	ID        string `json:"id"`
	Node      string `json:"node"`
	Status    string `json:"status"`
	ErrorCode string `json:"errorCode"`
	Error     string `json:"error"`
	Output    string `json:"output"`
	Reply     bool   `json:"reply"`
}

// sendWait sends messages (a JSON array) as the operator on central, with
// `steward send --wait -o json`, and returns the delivery and reply records.
func (f *fleet) sendWait(msgs string) (deliveries, replies []record) {
	f.t.Helper()
	out, errOut, _ := f.Steward("central", []byte(msgs), "send", "--timeout", "90s", "-o", "json", "-f", "-")
	var res struct {
		Records []record `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		f.t.Fatalf("send output is not JSON: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	for _, r := range res.Records {
		if r.Reply {
			replies = append(replies, r)
		} else {
			deliveries = append(deliveries, r)
		}
	}
	return deliveries, replies
}

var goodSeq atomic.Int64

// goodTo sends one good command to node, checks it succeeded and its reply
// was written, and returns its ID.
func (e *env) goodTo(node string) string {
	e.t.Helper()
	id := fmt.Sprintf("good%d", goodSeq.Add(1))
	d, r := e.f.sendWait(fmt.Sprintf(`[{"id":%q,"toNode":%q,"method":"REQCliCommand","methodArgs":["echo","good",%q],
	  "replyMethod":"REQToFileAppend","directory":"good","fileName":"good.log"}]`, id, node, id))
	if len(d) != 1 || d[0].Status != "succeeded" || d[0].Output != "good "+id+"\n" || len(r) != 1 || r[0].Status != "succeeded" {
		e.t.Fatalf("a good message to %s: %+v, replies %+v", node, d, r)
	}
	return id
}

// operatorSends sends msgs as the operator and counts each delivery: one
// that succeeded was accepted; any other was refused by its node, which
// must have reported it to central.
func (e *env) operatorSends(what, msgs string) {
	e.t.Helper()
	d, _ := e.f.sendWait(msgs)
	if len(d) == 0 {
		e.t.Fatalf("%s: nothing was sent", what)
	}
	for _, r := range d {
		e.n.attempts++
		if r.Status == "succeeded" {
			e.n.accepted++
			e.t.Errorf("%s: %s accepted it: %s", what, r.Node, r.Output)
			continue
		}
		e.n.node++
		e.t.Logf("%s: refused by %s: %s %s %s", what, r.Node, r.Status, r.ErrorCode, r.Error)
		fleettest.Eventually(e.t, 30*time.Second, what+" reported to central", func() bool {
			return strings.Contains(e.f.errorLog(r.Node), "message "+r.ID)
		})
		e.n.reported++
	}
}
