package netfault

import "fmt"

// Mode is the kind of fault Cut starts.
type Mode int

const (
	// Reset closes every connection (with a TCP RST, so both peers see the
	// link drop at once) and closes each new connection as soon as it is
	// accepted.
	Reset Mode = iota
	// Blackhole forwards nothing either way on open connections and accepts
	// new connections that lead nowhere. Peers are told nothing; they notice
	// only by their own pings and timeouts. A connection that saw a
	// Blackhole stays dead after Restore.
	Blackhole
	// DropToTarget discards what clients send (a node's publishes and acks
	// vanish) and keeps forwarding target to client.
	DropToTarget
	// DropToClient discards what the target sends (messages to the node
	// vanish) and keeps forwarding client to target.
	DropToClient
)

// String is the mode's name, as used in test names and logs.
func (m Mode) String() string {
	switch m {
	case Reset:
		return "reset"
	case Blackhole:
		return "blackhole"
	case DropToTarget:
		return "drop-to-target"
	case DropToClient:
		return "drop-to-client"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

func (m Mode) valid() bool { return m >= Reset && m <= DropToClient }

// direction is the way bytes travel through a link.
type direction int

const (
	toTarget direction = iota
	toClient
)

// drops reports whether m discards bytes travelling in d.
func (m Mode) drops(d direction) bool {
	switch m {
	case DropToTarget:
		return d == toTarget
	case DropToClient:
		return d == toClient
	}
	return true // Reset and Blackhole: both ways.
}
