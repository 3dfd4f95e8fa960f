package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stewardfleet/steward/internal/stream"
)

// Store reads and writes status records in a KV bucket. Every write
// carries the record's own TTL (see message.StatusTTL).
type Store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	prefix string // "$KV.<bucket>." for writes (see NewStore)
}

// NewStore returns a store on bucket kv, using js for writes. Through a
// leaf node into another JetStream domain, writes go to
// $JS.<domain>.API.$KV.<bucket>., as the nats.go KV client's own do
// (plain $KV writes through a leaf node found no stream: node TestLeafSite).
func NewStore(js jetstream.JetStream, kv jetstream.KeyValue) *Store {
	prefix := "$KV." + kv.Bucket() + "."
	if domain := js.Options().Domain; domain != "" {
		prefix = "$JS." + domain + ".API." + prefix
	}
	return &Store{js: js, kv: kv, prefix: prefix}
}

// ErrConflict: a compare-and-set found the record changed since it was read.
var ErrConflict = errors.New("status record changed")

// Write is a status write in flight; Wait returns its outcome.
type Write struct {
	future jetstream.PubAckFuture
	create bool
	err    error
}

// Wait blocks until the write is stored or failed (within
// stream.PubAckTimeout). A Create that found the record already there
// returns ErrExists.
func (w *Write) Wait(ctx context.Context) error {
	_, err := w.Revision(ctx)
	return err
}

// Revision waits like Wait and returns the revision the write created.
func (w *Write) Revision(ctx context.Context) (uint64, error) {
	if w.err != nil {
		return 0, w.err
	}
	select {
	case ack := <-w.future.Ok():
		return ack.Sequence, nil
	case err := <-w.future.Err():
		if isWrongLastSequence(err) {
			if w.create {
				return 0, ErrExists
			}
			return 0, ErrConflict
		}
		return 0, fmt.Errorf("store status: %w", err)
	case <-ctx.Done():
		return 0, fmt.Errorf("store status: %w", ctx.Err())
	}
}

// ErrExists: Create found a record already there.
var ErrExists = errors.New("status record exists")

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// CreateAsync starts writing r only if no record exists for its key.
func (s *Store) CreateAsync(ctx context.Context, r *Record, ttl time.Duration) *Write {
	return s.publishAsync(ctx, r, ttl, "0")
}

// PutAsync starts writing r, replacing what is there.
func (s *Store) PutAsync(ctx context.Context, r *Record, ttl time.Duration) *Write {
	return s.publishAsync(ctx, r, ttl, "")
}

// Put writes r and waits until it is stored.
func (s *Store) Put(ctx context.Context, r *Record, ttl time.Duration) error {
	return s.PutAsync(ctx, r, ttl).Wait(ctx)
}

// Update replaces the record at revision rev; it fails with ErrConflict if
// the record changed since.
func (s *Store) Update(ctx context.Context, r *Record, rev uint64, ttl time.Duration) error {
	return s.publishAsync(ctx, r, ttl, strconv.FormatUint(rev, 10)).Wait(ctx)
}

func (s *Store) publishAsync(ctx context.Context, r *Record, ttl time.Duration, expectRev string) *Write {
	data, err := json.Marshal(r)
	if err != nil {
		return &Write{err: fmt.Errorf("encode status %s: %w", r.Key(), err)}
	}
	msg := nats.NewMsg(s.prefix + r.Key())
	msg.Data = data
	if expectRev != "" {
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, expectRev)
	}
	f, err := stream.PublishAsync(ctx, s.js, msg, jetstream.WithMsgTTL(ttl))
	if err != nil {
		return &Write{err: fmt.Errorf("store status %s: %w", r.Key(), err)}
	}
	return &Write{future: f, create: expectRev == "0"}
}

// Get returns the record under key and its revision.
func (s *Store) Get(ctx context.Context, key string) (*Record, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return nil, 0, fmt.Errorf("get status %s: %w", key, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("decode status %s: %w", key, err)
	}
	return &r, e.Revision(), nil
}

// History returns every stored state of the record under key, oldest
// first.
func (s *Store) History(ctx context.Context, key string) ([]*Record, error) {
	entries, err := s.kv.History(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("status history %s: %w", key, err)
	}
	out := make([]*Record, 0, len(entries))
	for _, e := range entries {
		var r Record
		if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &r) != nil {
			continue
		}
		out = append(out, &r)
	}
	return out, nil
}

// List returns the records of every delivery of message id and of their
// replies, sorted by node, each delivery before its reply.
func (s *Store) List(ctx context.Context, id string) ([]*Record, error) {
	keys, err := s.kv.ListKeysFiltered(ctx, id+".*", id+".*.reply")
	if err != nil {
		return nil, fmt.Errorf("list status of %s: %w", id, err)
	}
	var out []*Record
	for k := range keys.Keys() {
		r, _, err := s.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sortRecords(out)
	return out, nil
}

func sortRecords(recs []*Record) { slices.SortFunc(recs, Compare) }

// Compare orders a message's records by node, each delivery before its
// reply: how steward shows them everywhere.
func Compare(a, b *Record) int {
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	switch {
	case a.Reply == b.Reply:
		return 0
	case b.Reply:
		return -1
	}
	return 1
}

// Watch streams the records of the given message ids (deliveries and their
// replies): first the current ones, then a nil record to say those were
// all, then every change, until ctx ends. The channel closes then.
func (s *Store) Watch(ctx context.Context, ids []string) (<-chan *Record, error) {
	filters := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		filters = append(filters, id+".*", id+".*.reply")
	}
	w, err := s.kv.WatchFiltered(ctx, filters, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch status: %w", err)
	}
	out := make(chan *Record, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				var r *Record
				if e != nil {
					r = new(Record)
					if json.Unmarshal(e.Value(), r) != nil {
						continue
					}
				} // else: end of the initial values, passed on as nil
				select {
				case out <- r:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
