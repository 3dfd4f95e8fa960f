package outbox_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stewardfleet/steward/internal/broker"
	"github.com/stewardfleet/steward/internal/message"
	"github.com/stewardfleet/steward/internal/outbox"
)

// The two ways a node could keep its input while cut off, measured side by
// side (docs/reliability.md): the outbox steward uses, and the road not
// taken, an embedded JetStream server on the node (a leaf with its own
// domain whose stream the hub would source from).

// BenchmarkPut is the cost of keeping one message in the outbox (synced).
func BenchmarkPut(b *testing.B) {
	o, err := outbox.Open(filepath.Join(b.TempDir(), "outbox"))
	if err != nil {
		b.Fatal(err)
	}
	m := &message.Message{ToNode: "ship1", Method: "REQCliCommand", MethodArgs: []string{"sh", "-c", "uptime"},
		FromNode: "ship2", SentAt: time.Now(), Deadline: time.Now().Add(24 * time.Hour)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.ID = fmt.Sprintf("m%d", i)
		i++
		if err := o.Put(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalJetStream is the alternative: an embedded JetStream server
// on the node, a publish stored (synced on file storage, as JetStream
// does by default) per message. It also reports what the server costs in
// memory before it stores anything (heap-bytes of the idle server).
func BenchmarkLocalJetStream(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	srv, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), Name: "leaf"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: "OUTBOX", Subjects: []string{"outbox.>"}}); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	data := []byte(`{"toNode":"ship1","method":"REQCliCommand","methodArgs":["sh","-c","uptime"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := js.Publish(b.Context(), "outbox.ship1", data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "idle-server-heap-MiB")
	b.ReportMetric(float64(after.Sys-before.Sys)/(1<<20), "idle-server-sys-MiB")
}

// BenchmarkHubSourcing is the hub's side of the alternative: one stream
// that sources from one stream per node (here on the same server, which
// spares the network and so understates the cost). It reports the memory
// the sources take per node, and how long the hub takes to take one new
// message from every node.
func BenchmarkHubSourcing(b *testing.B) {
	for _, nodes := range []int{100, 500} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			srv, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", StoreDir: b.TempDir(), Name: "hub"})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Shutdown()
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			ctx := b.Context()
			var sources []*jetstream.StreamSource
			for i := range nodes {
				name := fmt.Sprintf("LEAF%05d", i)
				if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"leaf." + name}}); err != nil {
					b.Fatal(err)
				}
				sources = append(sources, &jetstream.StreamSource{Name: name})
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			hub, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "HUB", Sources: sources})
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			round := 0
			for b.Loop() {
				round++
				for i := range nodes {
					if _, err := js.Publish(ctx, fmt.Sprintf("leaf.LEAF%05d", i), []byte("x")); err != nil {
						b.Fatal(err)
					}
				}
				for {
					info, err := hub.Info(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if info.State.Msgs >= uint64(round*nodes) {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(nodes), "source-heap-bytes/node")
		})
	}
}
