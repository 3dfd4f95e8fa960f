package redteam

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/signature"
	"github.com/stewardfleet/steward/internal/stream"
)

// conn is a raw NATS connection to the fleet's broker as one key holder.
type conn struct {
	who        string
	nc         *nats.Conn
	js         jetstream.JetStream
	violations chan string
}

// dial connects as the holder of node's seed, over TLS with the fleet's
// CA (which is public), using the node's own inbox prefix (the only one
// its permissions let it subscribe to).
func (f *fleet) dial(t *testing.T, node string) *conn {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(f.seed(node))
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{who: node, violations: make(chan string, 1024)}
	c.nc, err = nats.Connect(f.url(), opt, nats.RootCAs(f.tls.CA), nats.CustomInboxPrefix(credentials.InboxPrefix(node)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.violations <- err.Error():
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect with %s's seed: %v", node, err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// answer is what came back for one request on the wire.
type answer struct {
	refused string    // the broker's refusal; "" when it answered
	msg     *nats.Msg // its answer
}

// request publishes a message with a reply subject and waits for either
// the broker's permissions violation for subj or an answer.
func (c *conn) request(t *testing.T, subj string, hdr nats.Header, data []byte) answer {
	t.Helper()
	inbox := c.nc.NewRespInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m := &nats.Msg{Subject: subj, Reply: inbox, Header: hdr, Data: data}
	if err := c.nc.PublishMsg(m); err != nil {
		return answer{refused: err.Error()} // e.g. larger than the broker's max payload
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case v := <-c.violations:
			if strings.Contains(v, `"`+subj+`"`) {
				return answer{refused: v}
			}
			t.Logf("%s: an unrelated error from the broker: %s", c.who, v)
		default:
		}
		if r, err := sub.NextMsg(20 * time.Millisecond); err == nil {
			if r.Header.Get("Status") == "503" {
				return answer{refused: "no responders"}
			}
			return answer{msg: r}
		}
	}
	t.Fatalf("%s: no answer and no refusal for %s", c.who, subj)
	return answer{}
}

// apiError is the error a JetStream API or publish answer carries.
func apiError(b []byte) string {
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &r) != nil || r.Error == nil {
		return ""
	}
	return fmt.Sprintf("%d %s", r.Error.Code, r.Error.Description)
}

// A message built as an attacker would: steward's wire format, with the
// fields steward sets filled in by hand.
func newMessage(id, from, to, method string, args ...string) *message.Message {
	now := time.Now().UTC()
	return &message.Message{ID: id, FromNode: from, ToNode: to, Method: method, MethodArgs: args,
		SentAt: now, Deadline: now.Add(time.Hour)}
}

func (f *fleet) signer(t *testing.T, node string) *signature.Signer {
	t.Helper()
	s, err := signature.LoadSigner(f.seed(node))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t *testing.T, s *signature.Signer, m *message.Message) *message.Message {
	t.Helper()
	if err := s.Sign(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// auditLine is what the suite reads of a node's audit log.
type auditLine struct {
	Event      string `json:"event"`
	DeliveryID string `json:"deliveryId"`
	Status     string `json:"status"`
	Error      string `json:"error"`
}

func (f *fleet) audit(node string) []auditLine {
	file, err := os.Open(filepath.Join(f.data(node), ".steward", "audit.jsonl"))
	if err != nil {
		return nil
	}
	defer file.Close()
	var out []auditLine
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		var l auditLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// errorLog is what node reported to central's error log.
func (f *fleet) errorLog(node string) string {
	b, _ := os.ReadFile(filepath.Join(f.data("central"), message.ErrorLogPath, node, "errors.log"))
	return string(b)
}

// ackFloor is the stream sequence up to which node's queue is settled.
func (c *conn) ackFloor(t *testing.T, node string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cons, err := c.js.Consumer(ctx, stream.MessagesStream, node)
	if err != nil {
		t.Fatalf("%s's queue: %v", node, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("%s's queue: %v", node, err)
	}
	return info.AckFloor.Stream
}

func decodeJSON(b []byte, v any) error { return json.Unmarshal(b, v) }
