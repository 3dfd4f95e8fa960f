package signature

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/stewardfleet/steward/internal/message"
)

// ErrRevoked: signed with a key the fleet's key set revokes.
var ErrRevoked = errors.New("the message is signed by a revoked key")

// KeySet is the fleet's keys as the central node distributes them: which
// public key each node signs with, and which keys are revoked. Central
// signs it with its own key; a node takes a key set only when it is
// signed by the key its trusted-keys file lists for the central node, and
// only a newer version than the one it has.
type KeySet struct {
	Version  uint64            `json:"version"`
	IssuedAt time.Time         `json:"issuedAt,omitzero"`
	Keys     map[string]string `json:"keys,omitempty"`
	// Revoked keys are refused whoever signs with them, even where a
	// trusted-keys file lists them (except central's own key: it is the
	// root every node trusts, and changes only in their trusted-keys files).
	Revoked   []string `json:"revoked,omitempty"`
	Signer    string   `json:"signer,omitempty"`
	Signature []byte   `json:"signature,omitempty"`
}

// Trust sets the key node signs with (a new node, or a new key).
func (ks *KeySet) Trust(node, key string) error {
	if err := message.ValidNodeName(node); err != nil {
		return err
	}
	if !nkeys.IsValidPublicUserKey(key) {
		return fmt.Errorf("%q is not an nkey public user key (U…)", key)
	}
	if slices.Contains(ks.Revoked, key) {
		return fmt.Errorf("key %s is revoked: a revoked key is never trusted again; give %s a new key (steward keys new)", key, node)
	}
	if ks.Keys == nil {
		ks.Keys = map[string]string{}
	}
	ks.Keys[node] = key
	return nil
}

// Revoke revokes a public key, or the key the set has for a node name,
// and returns the key revoked.
func (ks *KeySet) Revoke(nodeOrKey string) (string, error) {
	key := nodeOrKey
	if !nkeys.IsValidPublicUserKey(key) {
		k, ok := ks.Keys[nodeOrKey]
		if !ok {
			return "", fmt.Errorf("the key set has no key for node %q (give the public key to revoke one it does not list)", nodeOrKey)
		}
		key = k
	}
	for node, k := range ks.Keys {
		if k == key {
			delete(ks.Keys, node)
		}
	}
	if !slices.Contains(ks.Revoked, key) {
		ks.Revoked = append(ks.Revoked, key)
		sort.Strings(ks.Revoked)
	}
	return key, nil
}

// SignKeySet makes ks the next version, issued now, signed by s.
func (s *Signer) SignKeySet(ks *KeySet, now time.Time) error {
	ks.Version++
	ks.IssuedAt = now.UTC()
	ks.Signer, ks.Signature = s.pub, nil
	b, err := json.Marshal(ks)
	if err != nil {
		return fmt.Errorf("encode key set: %w", err)
	}
	if ks.Signature, err = s.kp.Sign(b); err != nil {
		return fmt.Errorf("sign key set: %w", err)
	}
	return nil
}

// verify checks that ks is signed by root.
func (ks *KeySet) verify(root string) error {
	if ks.Signer != root {
		return fmt.Errorf("key set version %d is signed by %s, not by the central node's trusted key %s", ks.Version, ks.Signer, root)
	}
	c := *ks
	c.Signature = nil
	b, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("encode key set: %w", err)
	}
	kp, err := nkeys.FromPublicKey(root)
	if err != nil {
		return err
	}
	if err := kp.Verify(b, ks.Signature); err != nil {
		return fmt.Errorf("key set version %d: %w", ks.Version, ErrBadSignature)
	}
	for node, key := range ks.Keys {
		if message.ValidNodeName(node) != nil || !nkeys.IsValidPublicUserKey(key) {
			return fmt.Errorf("key set version %d: bad entry %q %q", ks.Version, node, key)
		}
	}
	return nil
}

// Keyring is the keys a node checks signatures with: its trusted-keys file
// (the root) and the newest key set central signed. It is safe for
// concurrent use.
type Keyring struct {
	root    Trust
	central string

	mu      sync.RWMutex
	set     *KeySet
	trust   Trust
	revoked map[string]bool
}

// NewKeyring starts a keyring from a node's trusted-keys file; central is
// the fleet's central node, whose key in root signs key sets.
func NewKeyring(root Trust, central string) *Keyring {
	return &Keyring{root: root, central: central, trust: root, revoked: map[string]bool{}}
}

// Apply takes ks if central signed it and it is newer than the key set
// the keyring has; it reports whether it did. An older or equal version is
// not an error (key sets arrive again), and never replaces a newer one.
func (k *Keyring) Apply(ks *KeySet) (bool, error) {
	root, ok := k.root[k.central]
	if !ok {
		return false, fmt.Errorf("this node's trusted-keys file has no key for the central node %s, so it takes no key set", k.central)
	}
	if err := ks.verify(root); err != nil {
		return false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set != nil && ks.Version <= k.set.Version {
		return false, nil
	}
	trust := maps.Clone(k.root)
	revoked := map[string]bool{}
	for _, key := range ks.Revoked {
		if key != root {
			revoked[key] = true
		}
	}
	for node, key := range ks.Keys {
		if node != k.central {
			trust[node] = key
		}
	}
	maps.DeleteFunc(trust, func(_, key string) bool { return revoked[key] })
	k.set, k.trust, k.revoked = ks, trust, revoked
	return true, nil
}

// Version is the version of the key set in use (0: none yet).
func (k *Keyring) Version() uint64 {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.set == nil {
		return 0
	}
	return k.set.Version
}

// Verify checks that m is signed by the key the keyring trusts for its
// fromNode, with a key that is not revoked.
func (k *Keyring) Verify(m *message.Message) error {
	k.mu.RLock()
	trust, revoked := k.trust, k.revoked
	k.mu.RUnlock()
	if revoked[m.Signer] {
		return fmt.Errorf("from %s, signed by %s: %w", m.FromNode, m.Signer, ErrRevoked)
	}
	return trust.Verify(m)
}

// Describe is one line about the keys in use, for logs and replies.
func (k *Keyring) Describe() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.set == nil {
		return fmt.Sprintf("trusted-keys file only (%d keys), no key set from central yet", len(k.root))
	}
	nodes := slices.Sorted(maps.Keys(k.trust))
	return fmt.Sprintf("key set version %d issued %s: %d trusted (%s), %d revoked",
		k.set.Version, k.set.IssuedAt.Format(time.RFC3339), len(nodes), strings.Join(nodes, ","), len(k.set.Revoked))
}
