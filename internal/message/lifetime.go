package message

import "time"

// Everything steward keeps about a delivery is kept for a time derived
// from one rule: the message's horizon, the last moment anything can still
// happen to it. A node may take it until its delivery deadline, and then
// run it at most retries+1 times (a crash or stop interrupts a run), each
// run taking up to methodTimeout and its acknowledgement up to ACKTimeout.
// From the horizon:
//
//   - the broker keeps the message, its deadline schedule and the node's
//     claim until Horizon + Grace (StorageTTL);
//   - a node's ledger remembers the delivery until Horizon + Grace +
//     LedgerMargin, after the broker can no longer redeliver it (the
//     margin absorbs a node clock that runs behind the broker's);
//   - status records are kept until Horizon + StatusRetention, so a
//     record outlives everything that can still change it.
const (
	// Grace is added to the horizon before the broker drops a message.
	Grace = time.Hour
	// LedgerMargin is how much longer a ledger remembers a delivery than
	// the broker keeps it.
	LedgerMargin = time.Hour
	// StatusRetention is how long a status record is kept after its
	// delivery's horizon.
	StatusRetention = 7 * 24 * time.Hour
)

// Horizon is the last moment anything can still happen to a delivery of
// m: its delivery deadline plus retries+1 runs, each of up to
// methodTimeout plus ACKTimeout. It is capped at MaxTimeout after the
// deadline. A message without a deadline (published without steward)
// counts from now.
func (m *Message) Horizon(now time.Time) time.Time {
	base := m.Deadline
	if base.IsZero() {
		base = now
	}
	runs := time.Duration(m.RetriesOr(0) + 1)
	h := base.Add(runs * (m.MethodTimeoutDuration() + m.ACKTimeoutDuration()))
	if limit := base.Add(MaxTimeout); h.After(limit) {
		h = limit
	}
	return h
}

// StorageTTL is how long the broker keeps m (and its deadline schedule
// and claim) when it is published at now.
func (m *Message) StorageTTL(now time.Time) time.Duration {
	return ttl(m.Horizon(now).Add(Grace).Sub(now))
}

// LedgerExpiry is when a node's ledger may forget a delivery of m.
func (m *Message) LedgerExpiry(now time.Time) time.Time {
	return m.Horizon(now).Add(Grace + LedgerMargin)
}

// StatusTTL is how long a status record of a delivery of m written at now
// is kept.
func (m *Message) StatusTTL(now time.Time) time.Duration {
	return ttl(m.Horizon(now).Add(StatusRetention).Sub(now))
}

// ttl rounds d up to whole seconds (the broker's TTL resolution), at
// least one.
func ttl(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}
