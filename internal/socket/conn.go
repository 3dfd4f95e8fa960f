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
	"time"
)

const (
	// smallValue is how large a value may grow without reserving budget.
	smallValue = 64 << 10
	// firstBuffer is a connection's first read buffer.
	firstBuffer = 4 << 10
	// readChunk bounds one read, and so what is read past a value's end.
	readChunk = 64 << 10
	// writeChunk is how much of an answer each write deadline covers.
	writeChunk = 64 << 10
)

// serveConn answers the JSON values a client sends until it stops sending.
func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	// A stopping node must not wait for a client that sends nothing.
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	in := &input{c: c, opts: s.opts, log: s.log, budget: s.budget, start: -1}
	defer in.release()
	for {
		value, err := in.next(ctx)
		if err != nil {
			s.refuse(c, in, err)
			return
		}
		delivered := s.answer(c, s.handler(ctx, value))
		in.release()
		if !delivered {
			return
		}
		in.answered, in.idleUntil = true, time.Now().Add(s.opts.Idle)
	}
}

// refuse ends a connection whose input stopped at err, answering the
// client when it is owed an answer.
func (s *Server) refuse(c net.Conn, in *input, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, errIdle):
		return
	case errors.Is(err, errStopping):
		if !in.pending() {
			return
		}
		err = fmt.Errorf("%w: the input from here on was not sent", err)
	case errors.Is(err, errSilent):
		s.log.Debug("socket client dropped", "error", err)
	case errors.Is(err, errTooLarge), errors.Is(err, errSyntax), errors.Is(err, errIncomplete):
		s.log.Warn("socket input refused", "error", err, "client", c.RemoteAddr().String())
		if s.opts.Refused != nil {
			s.opts.Refused(in.value(), err)
		}
		s.answer(c, ErrorLine(err))
		return
	default:
		s.log.Debug("socket read failed", "error", err)
		return
	}
	s.answer(c, fmt.Appendf(nil, "error: %v\n", err))
}

// answer writes b in chunks, each with a fresh deadline, so that a client
// that keeps reading gets all of it. It reports whether it did.
func (s *Server) answer(c net.Conn, b []byte) bool {
	written := 0
	for written < len(b) {
		c.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		n, err := c.Write(b[written:min(len(b), written+writeChunk)])
		written += n
		if err != nil {
			s.log.Warn("socket answer not delivered in full", "error", err, "written", written, "size", len(b))
			return false
		}
	}
	return true
}

// input reads the JSON values of one connection.
type input struct {
	c         net.Conn
	opts      Options
	log       *slog.Logger
	budget    chan struct{} // the server's tokens for values over smallValue
	reserved  bool          // this connection holds a token
	buf       []byte        // read from c; the value being read is buf[start:]
	start     int           // where the value begins in buf; -1 before it does
	scanned   int           // buf[:scanned] went through sc
	sc        scanner
	eof       bool      // the client closed its writing side
	answered  bool      // a value was answered
	idleUntil time.Time // when to stop waiting for a further value
}

// next returns the next JSON value, or why there is none: io.EOF,
// errIdle, errSilent, errIncomplete, errStopping, errSyntax, errTooLarge,
// or a read error.
func (in *input) next(ctx context.Context) ([]byte, error) {
	for {
		if ctx.Err() != nil {
			return nil, errStopping
		}
		if in.start < 0 {
			for in.scanned < len(in.buf) && isSpace(in.buf[in.scanned]) {
				in.scanned++
			}
			if in.scanned < len(in.buf) {
				in.start = in.scanned
			}
		}
		if in.start >= 0 && in.scanned < len(in.buf) {
			n, ev := in.sc.scan(in.buf[in.scanned:])
			in.scanned += n
			switch ev {
			case ended:
				return in.take()
			case bad:
				return nil, in.syntaxError()
			}
			if in.scanned-in.start > in.opts.MaxValue {
				return nil, in.tooLarge()
			}
		}
		if in.eof {
			return in.cut(io.EOF)
		}
		err := in.read(ctx)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			in.eof = true
		case isTimeout(err) && ctx.Err() == nil:
			return in.cut(err)
		case isTimeout(err):
			return nil, errStopping
		default:
			return nil, err
		}
	}
}

// cut handles the input ending (io.EOF) or pausing (a timeout) after what
// was read.
func (in *input) cut(why error) ([]byte, error) {
	switch {
	case in.start < 0 && why == io.EOF:
		return nil, io.EOF
	case in.start < 0 && in.answered:
		return nil, errIdle
	case in.start < 0:
		return nil, fmt.Errorf("%w for %s", errSilent, in.opts.Silence)
	case in.sc.end():
		return in.take()
	case why == io.EOF:
		return nil, fmt.Errorf("%w: %w", errSyntax, io.ErrUnexpectedEOF)
	}
	return nil, fmt.Errorf("%w: nothing more for %s after %d bytes", errIncomplete, in.opts.Silence, in.scanned-in.start)
}

// read reads more of the input into buf, making room first.
func (in *input) read(ctx context.Context) error {
	if len(in.buf) == cap(in.buf) {
		if err := in.makeRoom(ctx); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(in.opts.Silence)
	if in.start < 0 && in.answered {
		deadline = in.idleUntil
	}
	in.c.SetReadDeadline(deadline)
	// After the deadline, so that it cannot undo serveConn's stop.
	if ctx.Err() != nil {
		return errStopping
	}
	n, err := in.c.Read(in.buf[len(in.buf):min(cap(in.buf), len(in.buf)+readChunk)])
	in.buf = in.buf[:len(in.buf)+n]
	if n > 0 {
		return nil
	}
	return err
}

// makeRoom drops the bytes before the value being read and, when that is
// not enough, grows buf up to MaxValue+1 bytes, reserving budget first when
// it grows beyond smallValue.
func (in *input) makeRoom(ctx context.Context) error {
	keep := in.scanned
	if in.start >= 0 {
		keep = in.start
	}
	if keep > 0 {
		n := copy(in.buf, in.buf[keep:])
		in.buf = in.buf[:n]
		in.scanned -= keep
		if in.start >= 0 {
			in.start -= keep
		}
		if n < cap(in.buf) {
			return nil
		}
	}
	size := max(firstBuffer, min(2*cap(in.buf), in.opts.MaxValue+1))
	if size <= cap(in.buf) {
		return in.tooLarge()
	}
	if size > smallValue && !in.reserved {
		if err := in.reserve(ctx); err != nil {
			return err
		}
	}
	b := make([]byte, len(in.buf), size)
	copy(b, in.buf)
	in.buf = b
	return nil
}

// reserve takes a budget token, waiting while there is none.
func (in *input) reserve(ctx context.Context) error {
	select {
	case in.budget <- struct{}{}:
	default:
		in.log.Debug("socket input waits for budget", "max_buffered", in.opts.MaxBuffered)
		select {
		case in.budget <- struct{}{}:
		case <-ctx.Done():
			return errStopping
		}
	}
	in.reserved = true
	return nil
}

// release returns the budget token, if held.
func (in *input) release() {
	if in.reserved {
		<-in.budget
		in.reserved = false
	}
}

// take returns the value buf[start:scanned] and readies in for the next.
func (in *input) take() ([]byte, error) {
	v := in.buf[in.start:in.scanned:in.scanned]
	if len(v) > in.opts.MaxValue {
		return nil, in.tooLarge()
	}
	if in.reserved {
		// Hand the large buffer over rather than copy the value; what was
		// read past it (at most one read) moves to a new buffer.
		rest := in.buf[in.scanned:]
		in.buf = make([]byte, len(rest), max(firstBuffer, len(rest)))
		copy(in.buf, rest)
		in.scanned = 0
	} else {
		v = bytes.Clone(v)
	}
	in.start = -1
	in.sc.reset()
	return v, nil
}

// value returns what was read of the value being read (nil before it
// began), up to and including a bad byte.
func (in *input) value() []byte {
	if in.start < 0 {
		return nil
	}
	return in.buf[in.start:min(len(in.buf), in.scanned+1)]
}

// pending reports whether input was read that will not be answered.
func (in *input) pending() bool {
	return in.start >= 0 || len(bytes.TrimLeft(in.buf[in.scanned:], " \t\r\n")) > 0
}

// syntaxError describes the bad byte at buf[scanned] in encoding/json's
// words.
func (in *input) syntaxError() error {
	var v json.RawMessage
	err := json.Unmarshal(in.buf[in.start:in.scanned+1], &v)
	if err == nil {
		err = fmt.Errorf("unexpected %q at byte %d", in.buf[in.scanned], in.scanned-in.start)
	}
	return fmt.Errorf("%w: %w", errSyntax, err)
}

func (in *input) tooLarge() error {
	return fmt.Errorf("%w: a JSON value may be at most %s", errTooLarge, size(in.opts.MaxValue))
}

// size writes n bytes for people.
func size(n int) string {
	switch {
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
