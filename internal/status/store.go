package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stewardfleet/steward/internal/stream"
)

// Store reads and writes status records in a KV bucket.
type Store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	prefix string // "$KV.<bucket>." for asynchronous writes
}

// NewStore returns a store on bucket kv, using js for asynchronous writes.
func NewStore(js jetstream.JetStream, kv jetstream.KeyValue) *Store {
	return &Store{js: js, kv: kv, prefix: "$KV." + kv.Bucket() + "."}
}

// Write is a status write in flight; Wait returns its outcome.
type Write struct {
	future jetstream.PubAckFuture
	create bool
	err    error
}

// Wait blocks until the write is stored or failed. A Create that found the
// record already there is not an error: a later state won the race.
func (w *Write) Wait(ctx context.Context) error {
	if w.err != nil {
		return w.err
	}
	select {
	case <-w.future.Ok():
		return nil
	case err := <-w.future.Err():
		if w.create && isWrongLastSequence(err) {
			return nil
		}
		return fmt.Errorf("store status: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("store status: %w", ctx.Err())
	}
}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// CreateAsync starts writing r only if no record exists for its key.
func (s *Store) CreateAsync(ctx context.Context, r *Record) *Write {
	return s.publishAsync(ctx, r, true)
}

// PutAsync starts writing r, replacing what is there.
func (s *Store) PutAsync(ctx context.Context, r *Record) *Write {
	return s.publishAsync(ctx, r, false)
}

// Put writes r and waits until it is stored.
func (s *Store) Put(ctx context.Context, r *Record) error {
	return s.PutAsync(ctx, r).Wait(ctx)
}

func (s *Store) publishAsync(ctx context.Context, r *Record, create bool) *Write {
	data, err := json.Marshal(r)
	if err != nil {
		return &Write{err: fmt.Errorf("encode status %s: %w", r.Key(), err)}
	}
	msg := nats.NewMsg(s.prefix + r.Key())
	msg.Data = data
	if create {
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	}
	f, err := stream.PublishAsync(ctx, s.js, msg)
	if err != nil {
		return &Write{err: fmt.Errorf("store status %s: %w", r.Key(), err)}
	}
	return &Write{future: f, create: create}
}

// Get returns the record of one delivery and its revision.
func (s *Store) Get(ctx context.Context, deliveryID string) (*Record, uint64, error) {
	e, err := s.kv.Get(ctx, deliveryID)
	if err != nil {
		return nil, 0, fmt.Errorf("get status %s: %w", deliveryID, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("decode status %s: %w", deliveryID, err)
	}
	return &r, e.Revision(), nil
}

// Update replaces the record at revision rev, failing if it changed since.
func (s *Store) Update(ctx context.Context, r *Record, rev uint64) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode status %s: %w", r.Key(), err)
	}
	if _, err := s.kv.Update(ctx, r.Key(), data, rev); err != nil {
		return fmt.Errorf("update status %s: %w", r.Key(), err)
	}
	return nil
}

// List returns the records of every delivery of message id, sorted by node.
func (s *Store) List(ctx context.Context, id string) ([]*Record, error) {
	keys, err := s.kv.ListKeysFiltered(ctx, id+".*")
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
	slices.SortFunc(out, func(a, b *Record) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// Watch streams the records of the given message ids: first the current
// ones, then a nil record to say those were all, then every change, until
// ctx ends. The channel closes then.
func (s *Store) Watch(ctx context.Context, ids []string) (<-chan *Record, error) {
	filters := make([]string, len(ids))
	for i, id := range ids {
		filters[i] = id + ".*"
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
