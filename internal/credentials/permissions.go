package credentials

import (
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stewardfleet/steward/internal/stream"
)

// InboxPrefix is the prefix of the reply subjects of node's connections:
// its own, so that a node may subscribe to its own replies and no one
// else's.
func InboxPrefix(node string) string { return "_INBOX_" + node }

// NodePermissions are what an ordinary node may do on the broker: take
// messages from its own queue and acknowledge them, open (and create
// again) its own consumer, write its own delivery statuses and claims,
// read its own status and registry records, publish to the queues of the
// senders (its replies, error reports and hellos go there), and receive
// on its own inbox. It cannot consume another node's queue, write another
// node's status, publish into another node's queue (so it sends no
// messages: only senders do), nor create, change or delete streams,
// consumers other than its own, or buckets.
//
// Subjects that cannot be narrowed to the node: reading a deadline-stream
// message by sequence (a node reads back its own clock message), and the
// stream infos it opens the layout with.
func NodePermissions(node string, senders []string) *server.Permissions {
	messages, deadlines := stream.MessagesStream, stream.DeadlinesStream
	status, nodes, keys, procs := "KV_"+stream.StatusBucket, "KV_"+stream.NodesBucket, "KV_"+stream.KeysBucket, "KV_"+stream.ProcsBucket
	pub := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + messages,
		"$JS.API.STREAM.INFO." + deadlines,
		"$JS.API.STREAM.INFO." + status,
		"$JS.API.STREAM.INFO." + nodes,
		"$JS.API.STREAM.INFO." + keys,
		"$JS.API.STREAM.INFO." + procs,
		"$KV." + stream.ProcsBucket + "." + node,
		"$JS.API.CONSUMER.INFO." + messages + "." + node,
		// Only with its own queue's filter in the subject (the broker
		// checks that the request's filter is the subject's): the bare
		// create subjects would let a node point its consumer at another
		// node's queue.
		"$JS.API.CONSUMER.CREATE." + messages + "." + node + "." + stream.MessageSubject(node),
		"$JS.API.CONSUMER.MSG.NEXT." + messages + "." + node,
		"$JS.ACK." + messages + "." + node + ".>",
		"$JS.ACK.*.*." + messages + "." + node + ".>",
		"$KV." + stream.StatusBucket + ".*." + node,
		"$JS.API.DIRECT.GET." + status + ".$KV." + stream.StatusBucket + ".*." + node,
		"$JS.API.DIRECT.GET." + nodes + ".$KV." + stream.NodesBucket + "." + node,
		"$JS.API.DIRECT.GET." + keys + ".$KV." + stream.KeysBucket + "." + stream.KeySetKey,
		stream.ClaimSubjectPrefix + "*." + node,
		stream.ClockSubject(node),
		"$JS.API.STREAM.MSG.GET." + deadlines,
		"$JS.API.DIRECT.GET." + deadlines,
	}
	for _, s := range senders {
		if s != node {
			pub = append(pub, stream.MessageSubject(s))
		}
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: []string{InboxPrefix(node) + ".>"}},
	}
}

// InDomain returns p for a node that reaches the fleet's JetStream domain
// through a leaf node (--broker-domain): its JetStream API subjects and its
// KV writes become $JS.<domain>.API.… and $JS.<domain>.API.$KV.…, as the
// node sends them; everything else stays.
func InDomain(p *server.Permissions, domain string) *server.Permissions {
	if p == nil || domain == "" {
		return p
	}
	rewrite := func(sp *server.SubjectPermission) *server.SubjectPermission {
		if sp == nil {
			return nil
		}
		out := &server.SubjectPermission{Deny: sp.Deny}
		for _, s := range sp.Allow {
			if rest, ok := strings.CutPrefix(s, "$JS.API."); ok {
				s = "$JS." + domain + ".API." + rest
			} else if strings.HasPrefix(s, "$KV.") {
				s = "$JS." + domain + ".API." + s
			}
			out.Allow = append(out.Allow, s)
		}
		return out
	}
	return &server.Permissions{Publish: rewrite(p.Publish), Subscribe: p.Subscribe, Response: p.Response}
}
