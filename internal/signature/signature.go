// Package signature signs messages with the sending node's nkey (ed25519)
// and checks them against the keys a node trusts.
//
// The signature covers every field of the message as steward encodes it
// on the wire (JSON, with the signature itself left out): what runs, with
// which arguments and data, where results go, the timeouts, retries, sent
// time and deadline, the IDs, the sending and receiving node, and for a
// reply the delivery it answers. A node that trusts keys runs only
// messages signed by the key it trusts for their fromNode.
package signature

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/message"
)

var (
	// ErrUnsigned: a message without a signature, to a node that trusts keys.
	ErrUnsigned = errors.New("the message is not signed")
	// ErrUntrusted: signed with a key the node does not trust for its fromNode.
	ErrUntrusted = errors.New("the message is not signed by a key this node trusts for its sender")
	// ErrBadSignature: the signature does not match the message (tampered).
	ErrBadSignature = errors.New("the message's signature does not match it")
)

// Signer signs as one node.
type Signer struct {
	kp  nkeys.KeyPair
	pub string
}

// LoadSigner reads the nkey seed in file (mode 0600).
func LoadSigner(file string) (*Signer, error) {
	if err := credentials.CheckSecretFile(file); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an nkey seed: %w", file, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return &Signer{kp: kp, pub: pub}, nil
}

// PublicKey is the signer's public key.
func (s *Signer) PublicKey() string { return s.pub }

// Sign sets m's Signer and Signature. A nil Signer signs nothing.
func (s *Signer) Sign(m *message.Message) error {
	if s == nil {
		return nil
	}
	m.Signer, m.Signature = s.pub, nil
	b, err := canonical(m)
	if err != nil {
		return err
	}
	sig, err := s.kp.Sign(b)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	m.Signature = sig
	return nil
}

// MsgID is the Nats-Msg-Id the signer publishes a message with whose
// deduplication key is base: base with a tag only this signer can make
// (the start of its deterministic ed25519 signature of base), so that
// another client, which knows base, cannot publish first under the same
// ID and have the broker drop the real message as a duplicate. The same
// signer always makes the same ID, so its own re-sends are still
// deduplicated. A nil Signer returns base.
func (s *Signer) MsgID(base string) string {
	if s == nil {
		return base
	}
	sig, err := s.kp.Sign([]byte("steward Nats-Msg-Id " + base))
	if err != nil || len(sig) < 12 {
		return base
	}
	return base + "." + hex.EncodeToString(sig[:12])
}

// canonical is what a signature covers: the message as encoded on the
// wire, without its signature.
func canonical(m *message.Message) ([]byte, error) {
	c := *m
	c.Signature = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode for signature: %w", err)
	}
	return b, nil
}

// Trust is the public key a node trusts for each sending node.
type Trust map[string]string

// LoadTrust reads a trust file: one "<node> <public key>" per line (what
// `steward keys new` prints), '#' starting a comment.
func LoadTrust(file string) (Trust, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("trusted-keys: %w", err)
	}
	defer f.Close()
	t := Trust{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || message.ValidNodeName(fields[0]) != nil || !nkeys.IsValidPublicUserKey(fields[1]) {
			return nil, fmt.Errorf("trusted-keys %s line %d: want \"<node> <public key>\"", file, n)
		}
		if _, dup := t[fields[0]]; dup {
			return nil, fmt.Errorf("trusted-keys %s line %d: node %s listed twice", file, n, fields[0])
		}
		t[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trusted-keys %s: %w", file, err)
	}
	if len(t) == 0 {
		return nil, fmt.Errorf("trusted-keys %s: no keys: this node would run nothing", file)
	}
	return t, nil
}

// Verify checks that m is signed by the key t trusts for m.FromNode.
func (t Trust) Verify(m *message.Message) error {
	if m.Signer == "" || len(m.Signature) == 0 {
		return fmt.Errorf("from %s: %w", m.FromNode, ErrUnsigned)
	}
	want, ok := t[m.FromNode]
	if !ok || m.Signer != want {
		return fmt.Errorf("from %s, signed by %s: %w", m.FromNode, m.Signer, ErrUntrusted)
	}
	kp, err := nkeys.FromPublicKey(want)
	if err != nil {
		return fmt.Errorf("trusted key of %s: %w", m.FromNode, err)
	}
	b, err := canonical(m)
	if err != nil {
		return err
	}
	if err := kp.Verify(b, m.Signature); err != nil {
		return fmt.Errorf("from %s: %w", m.FromNode, ErrBadSignature)
	}
	return nil
}
