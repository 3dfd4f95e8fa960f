// Package socket serves steward.sock, the unix socket operators write
// messages to (`nc -U ./tmp/steward.sock < msg.json`). A connection carries
// one or more JSON values (each an array of messages or one message); each
// is answered on the same connection with one line per message: its ID, or
// its error. The connection is closed after the answer, so nc exits.
package socket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Handler takes one JSON value and returns the answer to write back.
type Handler func(ctx context.Context, input []byte) []byte

// MaxInput bounds what one connection may send.
const MaxInput = 64 << 20

// Server is a listening socket.
type Server struct {
	path    string
	ln      net.Listener
	handler Handler
	log     *slog.Logger
	wg      sync.WaitGroup
}

// Listen creates the socket at path (removing a stale one left by a crash)
// with mode 0600: only the node's user may send.
func Listen(path string, h Handler, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s is in use by another steward", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{path: path, ln: ln, handler: h, log: log}, nil
}

// Serve accepts connections until ctx ends, then closes the socket and
// waits for the connections being served.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.wg.Wait()
				os.Remove(s.path)
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, c)
		}()
	}
}

// idle is how long a connection may stay silent after its last complete
// JSON value before it is answered and closed (nc does not close its
// writing side at the end of its input).
const idle = 300 * time.Millisecond

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	// A stopping node must not wait for a client that sends nothing.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	r := &countingReader{r: io.LimitReader(c, MaxInput+1)}
	dec := json.NewDecoder(r)
	first := true
	for {
		if ctx.Err() != nil {
			return
		}
		if first {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
		} else {
			c.SetReadDeadline(time.Now().Add(idle))
		}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err != nil {
			if errors.Is(err, io.EOF) || isTimeout(err) && (!first || ctx.Err() != nil) {
				return
			}
			if r.n > MaxInput {
				err = fmt.Errorf("input is larger than %d MiB", MaxInput>>20)
			}
			s.answer(c, fmt.Appendf(nil, "error: invalid JSON input: %v\n", err))
			s.log.Warn("socket input refused", "error", err)
			return
		}
		first = false
		s.answer(c, s.handler(ctx, bytes.Clone(raw)))
	}
}

func (s *Server) answer(c net.Conn, b []byte) {
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		s.log.Debug("socket answer", "error", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
