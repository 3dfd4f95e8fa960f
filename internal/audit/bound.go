package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/stewardfleet/steward/internal/message"
)

// Record bounds.
const (
	// MaxInput is the most of refused raw input a record keeps (4 KiB).
	MaxInput = 4 << 10
	// MaxRefusedLine bounds the line of a refused record (1 MiB), newline
	// included.
	MaxRefusedLine = 1 << 20
	// MaxLine bounds the line of any other record (64 MiB), newline
	// included: eight times the 8 MiB above which a NATS server warns that
	// its max_payload is too large, so the messages of any sane broker fit.
	MaxLine = 64 << 20
)

// RefusedInput is the record of raw input that was refused with err (err
// may be nil): the first MaxInput bytes of input, cut at a UTF-8 boundary,
// with its full size and SHA-256, so a line stays small however large the
// input was and the input can still be told apart.
func RefusedInput(input []byte, err error) Record {
	r := Record{Event: Refused, Input: bytes.Clone(cut(input, MaxInput)),
		InputBytes: len(input), InputSHA256: sum(input)}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// encodeWithin returns r as one line, newline included, of at most limit
// bytes. While the line is too long it cuts, in turn, Message.Data, the
// error text, the whole message (keeping the start of its JSON in Input),
// and the remaining strings. limit must leave room for a record without
// message whose strings are at most MaxInput bytes: 200 KiB is plenty.
func encodeWithin(r Record, limit int) ([]byte, error) {
	orig := r.Message
	if len(r.Input) > MaxInput {
		if r.InputBytes == 0 {
			r.InputBytes = len(r.Input)
		}
		if r.InputSHA256 == "" {
			r.InputSHA256 = sum(r.Input)
		}
		r.Input = cut(r.Input, MaxInput)
	}
	if r.Message != nil && len(r.Message.Data) >= limit {
		// Encoding megabytes only to cut them is wasted: the data cannot
		// take more than limit bytes anyway.
		cutData(&r, limit)
	}
	b, err := line(&r)
	if err != nil || len(b) <= limit {
		return b, err
	}
	steps := []func(r *Record, over int) bool{
		fitData,
		cutError,
		func(r *Record, _ int) bool { return dropMessage(r, orig) },
		cutRest,
	}
	for _, step := range steps {
		// fitData can take a few rounds: JSON escaping makes the encoded
		// size of a cut only roughly predictable.
		for round := 0; round < 8 && len(b) > limit && step(&r, len(b)-limit); round++ {
			if b, err = line(&r); err != nil {
				return nil, err
			}
		}
		if len(b) <= limit {
			return b, nil
		}
	}
	return nil, fmt.Errorf("record of %d bytes does not fit in %d", len(b), limit)
}

// fitData cuts Message.Data so the line gets over bytes shorter; false
// when there is no data left to cut.
func fitData(r *Record, over int) bool {
	if r.Message == nil || len(r.Message.Data) == 0 {
		return false
	}
	enc, err := json.Marshal(r.Message.Data)
	if err != nil {
		return false
	}
	cutData(r, len(enc)-over)
	return true
}

// cutData replaces Message.Data with its longest start whose JSON takes at
// most budget bytes, recording the full data's size and hash the first
// time. The caller's message is not changed.
func cutData(r *Record, budget int) {
	m := *r.Message
	if r.DataSHA256 == "" {
		r.DataBytes, r.DataSHA256 = len(m.Data), sum(m.Data)
	}
	r.Truncated = true
	m.Data = dataWithin(m.Data, budget)
	r.Message = &m
}

// dataWithin returns the longest start of d, cut at a UTF-8 boundary,
// whose JSON takes at most budget bytes. Each byte takes at least one
// byte in JSON, so budget bytes is the longest start worth trying.
func dataWithin(d message.Data, budget int) message.Data {
	n := min(len(d), budget)
	for n > 0 {
		p := message.Data(cut(d, n))
		enc, err := json.Marshal(p)
		if err != nil {
			return nil
		}
		if len(enc) <= budget {
			return p
		}
		n = min(len(p)-1, len(p)*budget/len(enc))
	}
	return nil
}

// cutError cuts the error text to MaxInput bytes; false when it is
// already that short.
func cutError(r *Record, _ int) bool {
	if len(r.Error) <= MaxInput {
		return false
	}
	r.Error = string(cut([]byte(r.Error), MaxInput))
	r.Truncated = true
	return true
}

// dropMessage replaces the message with the start of orig's JSON in Input
// (when Input is free) and clears what cutData recorded of its data.
func dropMessage(r *Record, orig *message.Message) bool {
	if r.Message == nil {
		return false
	}
	r.Message, r.DataBytes, r.DataSHA256, r.Truncated = nil, 0, "", true
	if len(r.Input) > 0 {
		return true
	}
	enc, err := json.Marshal(orig)
	if err != nil {
		return true
	}
	r.Input, r.InputBytes, r.InputSHA256 = bytes.Clone(cut(enc, MaxInput)), len(enc), sum(enc)
	return true
}

// cutRest cuts the other strings to MaxInput bytes, which bounds the line;
// false once done.
func cutRest(r *Record, _ int) bool {
	changed := false
	for _, s := range []*string{&r.Node, &r.DeliveryID, &r.Status, &r.InputSHA256} {
		if len(*s) > MaxInput {
			*s = string(cut([]byte(*s), MaxInput))
			changed = true
		}
	}
	if changed {
		r.Truncated = true
	}
	return changed
}

// cut returns the start of b, at most n bytes long, not splitting a UTF-8
// sequence (when b is UTF-8).
func cut(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return b[:i]
		}
	}
	return b[:n]
}

// sum is the hex SHA-256 of b.
func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
