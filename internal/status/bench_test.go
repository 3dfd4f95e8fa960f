package status_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/natstest"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/stream"
)

// BenchmarkStatusUpdate is one status write as nodes do it: published
// asynchronously, then waited for, 64 in flight.
func BenchmarkStatusUpdate(b *testing.B) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	ctx := natstest.Context(b, time.Minute)
	assets, err := stream.Apply(ctx, js, stream.DefaultLayout(), nil)
	if err != nil {
		b.Fatal(err)
	}
	st := status.NewStore(js, assets.Status)
	rec := status.Record{ID: "bench", Method: "REQPing", FromNode: "central", Status: status.Succeeded}
	b.ReportAllocs()
	var inflight []*status.Write
	i := 0
	for b.Loop() {
		r := rec
		r.Node = "n" + strconv.Itoa(i%1000)
		i++
		inflight = append(inflight, st.PutAsync(ctx, &r, time.Hour))
		if len(inflight) == 64 {
			for _, w := range inflight {
				if err := w.Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
			inflight = inflight[:0]
		}
	}
	for _, w := range inflight {
		if err := w.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
