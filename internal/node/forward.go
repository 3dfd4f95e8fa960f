package node

import (
	"context"
	"time"
)

// forwardInterval is how often the forwarder looks at the outbox when
// nothing woke it (messages put there by `steward send` beside the node).
const forwardInterval = 2 * time.Second

// forwardLoop sends what waits in the outbox whenever the broker can be
// reached: after a reconnect, when the socket queued something, and every
// forwardInterval.
func (n *Node) forwardLoop(ctx context.Context) error {
	t := time.NewTicker(forwardInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.forward:
		}
		if !n.nc.IsConnected() || n.outbox.Empty() {
			continue
		}
		sent, err := n.sender.Forward(ctx)
		if sent > 0 {
			n.log.Info("sent messages that waited in the outbox", "count", sent, "left", n.outbox.Len())
		}
		if err != nil && ctx.Err() == nil {
			n.log.Warn("outbox: not everything could be sent yet", "error", err, "left", n.outbox.Len())
		}
	}
}

func (n *Node) wakeForwarder() {
	if n.forward == nil {
		return
	}
	select {
	case n.forward <- struct{}{}:
	default:
	}
}
