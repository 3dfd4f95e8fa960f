package message_test

import (
	"testing"

	"github.com/stewardfleet/steward/internal/message"
)

var benchInput = []byte(`{"directory":"/var/cli/command_result/","fileName":"some-file-name.result","toNode":"ship1",
  "methodArgs":["bash","-c","sleep 5 & tree ./"],"method":"REQCliCommand","replyMethod":"REQToFileAppend",
  "ACKTimeout":5,"retries":3,"replyACKTimeout":5,"replyRetries":3,"methodTimeout":10}`)

// BenchmarkDecodeValidate is what the sender does with each operator
// message: strict decoding and validation.
func BenchmarkDecodeValidate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := message.DecodeOne(benchInput)
		if err != nil {
			b.Fatal(err)
		}
		if err := message.ValidateInput(m, cat); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeWire is what a node does with each message it takes.
func BenchmarkDecodeWire(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := message.DecodeWire(benchInput)
		if err != nil {
			b.Fatal(err)
		}
		if err := message.Validate(m, cat); err != nil {
			b.Fatal(err)
		}
	}
}
