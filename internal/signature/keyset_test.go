package signature_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/signature"
)

func loadSigner(t *testing.T, seed string) *signature.Signer {
	t.Helper()
	s, err := signature.LoadSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A key set signed by central adds keys and revokes them on every node that
// trusts central; anything else (another signer, a change after signing,
// an older version) changes nothing.
func TestKeyring(t *testing.T) {
	dir := t.TempDir()
	centralSeed, centralPub := natstest.NkeySeed(t, dir, "central")
	ship2Seed, ship2Pub := natstest.NkeySeed(t, dir, "ship2")
	opsSeed, opsPub := natstest.NkeySeed(t, dir, "ops")
	central, ship2, ops := loadSigner(t, centralSeed), loadSigner(t, ship2Seed), loadSigner(t, opsSeed)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

	k := signature.NewKeyring(signature.Trust{"central": centralPub, "ship2": ship2Pub}, "central")
	fromOps := func() *message.Message {
		m := signed(t, ops)
		m.FromNode = "ops"
		if err := ops.Sign(m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if err := k.Verify(fromOps()); !errors.Is(err, signature.ErrUntrusted) {
		t.Fatalf("ops before any key set: %v", err)
	}

	v1 := &signature.KeySet{}
	if err := v1.Trust("ops", opsPub); err != nil {
		t.Fatal(err)
	}
	if err := central.SignKeySet(v1, now); err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Apply(v1); !ok || err != nil {
		t.Fatalf("apply v1: %v %v", ok, err)
	}
	if err := k.Verify(fromOps()); err != nil {
		t.Fatalf("ops after v1 trusts it: %v", err)
	}

	// Revoke ops and ship2 (ship2 by its key, which only the trusted-keys file lists).
	v2 := *v1
	v2.Keys = map[string]string{"ops": opsPub}
	if key, err := v2.Revoke("ops"); err != nil || key != opsPub {
		t.Fatalf("revoke ops: %s %v", key, err)
	}
	if _, err := v2.Revoke(ship2Pub); err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Revoke(centralPub); err != nil { // has no effect: central's key is the root
		t.Fatal(err)
	}
	if err := v2.Trust("ops", opsPub); err == nil {
		t.Error("a revoked key was trusted again")
	}
	if err := central.SignKeySet(&v2, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	for name, bad := range map[string]func() *signature.KeySet{
		"signed by ship2": func() *signature.KeySet {
			ks := v2
			ks.Version = 0
			_ = ship2.SignKeySet(&ks, now)
			return &ks
		},
		"changed after signing": func() *signature.KeySet {
			ks := v2
			ks.Revoked = nil
			return &ks
		},
		"signer swapped in": func() *signature.KeySet {
			ks := v2
			ks.Version = 0
			_ = ship2.SignKeySet(&ks, now)
			ks.Signer = centralPub
			return &ks
		},
	} {
		if ok, err := k.Apply(bad()); ok || err == nil {
			t.Errorf("%s: applied (%v, %v)", name, ok, err)
		}
	}
	if k.Version() != 1 {
		t.Fatalf("version %d after bad key sets, want 1", k.Version())
	}

	if ok, err := k.Apply(&v2); !ok || err != nil {
		t.Fatalf("apply v2: %v %v", ok, err)
	}
	if err := k.Verify(fromOps()); !errors.Is(err, signature.ErrRevoked) {
		t.Errorf("ops after its revocation: %v", err)
	}
	m := signed(t, ship2)
	m.FromNode = "ship2"
	_ = ship2.Sign(m)
	if err := k.Verify(m); !errors.Is(err, signature.ErrRevoked) {
		t.Errorf("ship2 (trusted-keys file) after its revocation: %v", err)
	}
	if err := k.Verify(signed(t, central)); err != nil {
		t.Errorf("central's key cannot be revoked by a key set: %v", err)
	}
	// The older version comes again: nothing changes.
	if ok, err := k.Apply(v1); ok || err != nil {
		t.Errorf("an older key set: applied %v, %v", ok, err)
	}
	if err := k.Verify(fromOps()); !errors.Is(err, signature.ErrRevoked) {
		t.Errorf("ops after an older key set came again: %v", err)
	}
	if d := k.Describe(); !strings.Contains(d, "version 2") || !strings.Contains(d, "3 revoked") {
		t.Errorf("describe: %s", d)
	}
}

// A node whose trusted-keys file has no key for central takes no key set.
func TestKeyringNeedsCentralsKey(t *testing.T) {
	dir := t.TempDir()
	centralSeed, _ := natstest.NkeySeed(t, dir, "central")
	_, ship1Pub := natstest.NkeySeed(t, dir, "ship1")
	ks := &signature.KeySet{}
	if err := loadSigner(t, centralSeed).SignKeySet(ks, time.Now()); err != nil {
		t.Fatal(err)
	}
	k := signature.NewKeyring(signature.Trust{"ship1": ship1Pub}, "central")
	if ok, err := k.Apply(ks); ok || err == nil || !strings.Contains(err.Error(), "no key for the central node") {
		t.Errorf("applied without central's key: %v %v", ok, err)
	}
}
