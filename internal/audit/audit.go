// Package audit writes the audit log: one JSON line per message a node
// sends or processes, with the whole message, so any line can be used to
// recreate the message. Lines are appended with one write call each, so
// several processes (a node and `steward send` beside it) can share a file.
package audit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// Event names what happened to the message.
type Event string

// Audit events.
const (
	// Sent: the message entered the system from this node.
	Sent Event = "sent"
	// Processed: the node handled a delivery to its end.
	Processed Event = "processed"
	// Refused: input that could not be sent, or a delivery the node refused.
	Refused Event = "refused"
)

// Record is one audit line.
type Record struct {
	Time       time.Time        `json:"time"`
	Node       string           `json:"node"`
	Event      Event            `json:"event"`
	DeliveryID string           `json:"deliveryId,omitempty"`
	Status     string           `json:"status,omitempty"`
	Attempt    uint64           `json:"attempt,omitempty"`
	ExitCode   *int             `json:"exitCode,omitempty"`
	Error      string           `json:"error,omitempty"`
	Message    *message.Message `json:"message,omitempty"`
}

// Log is an open audit log. A nil *Log discards everything.
type Log struct {
	mu   sync.Mutex
	file *os.File
	node string
}

// Open opens (or creates) the audit log at path for node.
func Open(path, node string) (*Log, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("audit folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &Log{file: f, node: node}, nil
}

// Write appends r, filling in the time and node.
func (l *Log) Write(r Record) error {
	if l == nil {
		return nil
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	r.Node = l.node
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit record: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	if _, err := l.file.Write(b); err != nil {
		return fmt.Errorf("audit write: %w", err)
	}
	return nil
}

// Close closes the log.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.file == nil {
		return nil
	}
	err := l.file.Close()
	l.file = nil
	return err
}
