package signature_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/credentials"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/signature"
)

func signed(t testing.TB, s *signature.Signer) *message.Message {
	t.Helper()
	retries := 2
	m := &message.Message{
		ID: "abc1", ToNode: "ship1", FromNode: "central", Method: "REQCliCommand",
		MethodArgs: []string{"systemctl", "status", "nginx"}, Data: message.Data("input"),
		Directory: "out", FileName: "status.log", MethodTimeout: 10, Retries: &retries,
		SentAt: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), Deadline: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
		DeadlineSeq: 42,
	}
	if err := s.Sign(m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSignAndVerify(t *testing.T) {
	dir := t.TempDir()
	centralSeed, centralPub := natstest.NkeySeed(t, dir, "central")
	ship2Seed, _ := natstest.NkeySeed(t, dir, "ship2")
	central, err := signature.LoadSigner(centralSeed)
	if err != nil {
		t.Fatal(err)
	}
	ship2, err := signature.LoadSigner(ship2Seed)
	if err != nil {
		t.Fatal(err)
	}
	trust := signature.Trust{"central": centralPub}

	if err := trust.Verify(signed(t, central)); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	for name, tamper := range map[string]func(*message.Message){
		"command":     func(m *message.Message) { m.MethodArgs = []string{"rm", "-rf", "/"} },
		"method":      func(m *message.Message) { m.Method = "REQToFile" },
		"data":        func(m *message.Message) { m.Data = message.Data("other") },
		"target":      func(m *message.Message) { m.ToNode = "ship9" },
		"directory":   func(m *message.Message) { m.Directory = "elsewhere" },
		"file name":   func(m *message.Message) { m.FileName = "x" },
		"timeout":     func(m *message.Message) { m.MethodTimeout = 9999 },
		"retries":     func(m *message.Message) { r := 100; m.Retries = &r },
		"sent time":   func(m *message.Message) { m.SentAt = m.SentAt.Add(time.Hour) },
		"deadline":    func(m *message.Message) { m.Deadline = m.Deadline.Add(time.Hour) },
		"id":          func(m *message.Message) { m.ID = "abc2" },
		"reply field": func(m *message.Message) { m.Reply = &message.ReplyInfo{DeliveryID: "x1.ship1", Chunks: 1} },
	} {
		m := signed(t, central)
		tamper(m)
		if err := trust.Verify(m); !errors.Is(err, signature.ErrBadSignature) {
			t.Errorf("%s changed after signing: %v", name, err)
		}
	}
	unsigned := signed(t, central)
	unsigned.Signer, unsigned.Signature = "", nil
	if err := trust.Verify(unsigned); !errors.Is(err, signature.ErrUnsigned) {
		t.Errorf("unsigned: %v", err)
	}
	forged := signed(t, ship2) // claims to come from central
	if err := trust.Verify(forged); !errors.Is(err, signature.ErrUntrusted) {
		t.Errorf("signed by ship2 as central: %v", err)
	}
	var nilSigner *signature.Signer
	if err := nilSigner.Sign(&message.Message{}); err != nil {
		t.Errorf("a nil signer: %v", err)
	}
}

// LoadSigner gives the seed's public key, and refuses a seed others can
// read.
func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	seed, pub := natstest.NkeySeed(t, dir, "ship1")
	s, err := signature.LoadSigner(seed)
	if err != nil || s.PublicKey() != pub {
		t.Fatalf("LoadSigner: %v, key %v; want %q", err, s, pub)
	}
	if err := os.Chmod(seed, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := signature.LoadSigner(seed); !errors.Is(err, credentials.ErrInsecureFile) {
		t.Errorf("LoadSigner of a world-readable seed: %v", err)
	}
}

func TestLoadTrust(t *testing.T) {
	dir := t.TempDir()
	_, pub := natstest.NkeySeed(t, dir, "central")
	for _, tc := range []struct{ name, content, want string }{
		{"as keys new prints it", "central " + pub + "\n# comment\n\n", ""},
		{"empty", "# nothing\n", "no keys"},
		{"not a key", "central SUAXYZ\n", "line 1"},
		{"bad node name", "../x " + pub + "\n", "line 1"},
		{"twice", "central " + pub + "\ncentral " + pub + "\n", "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, "trusted")
			if err := os.WriteFile(file, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			tr, err := signature.LoadTrust(file)
			switch {
			case tc.want == "" && (err != nil || tr["central"] != pub):
				t.Fatalf("LoadTrust: %v %v", tr, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("LoadTrust: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// A message ID tag is the same every time for one key, different for
// another key and another base, and absent without a key.
func TestMsgID(t *testing.T) {
	dir := t.TempDir()
	aSeed, _ := natstest.NkeySeed(t, dir, "a")
	bSeed, _ := natstest.NkeySeed(t, dir, "b")
	a, _ := signature.LoadSigner(aSeed)
	b, _ := signature.LoadSigner(bSeed)
	id := a.MsgID("X1.ship1.reply.0")
	if !strings.HasPrefix(id, "X1.ship1.reply.0.") || len(id) != len("X1.ship1.reply.0.")+24 {
		t.Fatalf("MsgID = %q", id)
	}
	if again := a.MsgID("X1.ship1.reply.0"); again != id {
		t.Errorf("not deterministic: %q then %q", id, again)
	}
	if other := b.MsgID("X1.ship1.reply.0"); other == id {
		t.Error("another key makes the same ID")
	}
	if other := a.MsgID("X1.ship1.reply.1"); other[len(other)-24:] == id[len(id)-24:] {
		t.Error("another base has the same tag")
	}
	var none *signature.Signer
	if got := none.MsgID("X1.ship1"); got != "X1.ship1" {
		t.Errorf("no key: %q", got)
	}
}
