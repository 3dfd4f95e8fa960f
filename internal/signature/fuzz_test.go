package signature_test

import (
	"encoding/json"
	"testing"

	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/signature"
)

// Whatever bytes come off the wire, Verify never panics and accepts only
// the message that was signed: a fuzzer cannot forge ed25519, so anything
// accepted must encode exactly as the signed message does.
func FuzzVerify(f *testing.F) {
	seed, pub := natstest.NkeySeed(f, f.TempDir(), "central")
	signer, err := signature.LoadSigner(seed)
	if err != nil {
		f.Fatal(err)
	}
	good := signed(f, signer)
	want, _ := json.Marshal(good)
	trust := signature.Trust{"central": pub}
	f.Add(want)
	tampered := *good
	tampered.MethodArgs = []string{"rm", "-rf", "/"}
	b, _ := json.Marshal(&tampered)
	f.Add(b)
	f.Add([]byte(`{"id":"x","toNode":"ship1","fromNode":"central","method":"REQPing","signer":"UABC","signature":"AAAA"}`))
	f.Fuzz(func(t *testing.T, input []byte) {
		m, err := message.DecodeWire(input)
		if err != nil {
			return
		}
		if trust.Verify(m) != nil {
			return
		}
		got, _ := json.Marshal(m)
		if string(got) != string(want) {
			t.Fatalf("accepted a message other than the signed one:\n%s\nwant\n%s", got, want)
		}
	})
}
