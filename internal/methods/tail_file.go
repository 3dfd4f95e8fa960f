package methods

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// tailFile follows a file from its end, as `tail -F` does, and streams
// each new line back (Stream) until methodTimeout, which is how it ends:
// the delivery is then succeeded. A file that is renamed or replaced
// (rotated) is followed under its name from the new file's start, after
// the rest of the old one; one that is truncated (found shorter than what
// was read), from its start again. A
// relative path is in the node's data folder. A file missing at the start
// is a failure; one missing later (between rotations) is waited for.
var tailFile = Spec{
	Name:           "REQTailFile",
	Summary:        "follow a file from its end and stream new lines back until methodTimeout (survives rotation and truncation)",
	Kind:           Command,
	DefaultTimeout: 60 * time.Second,
	Streams:        true,
	Validate:       checks("methodArgs", validateTailFile),
	Handler:        runTailFile,
}

// tailPoll is how often the file is checked for new lines, rotation and
// truncation; a variable so tests can make it short.
var tailPoll = 200 * time.Millisecond

func validateTailFile(m *message.Message) error {
	if len(m.MethodArgs) != 1 || m.MethodArgs[0] == "" {
		return fmt.Errorf(`REQTailFile needs methodArgs with one file path, e.g. ["/var/log/syslog"]: %w`, message.ErrFieldValue)
	}
	return nil
}

func runTailFile(ctx context.Context, req *Request) (*Result, error) {
	if len(req.Msg.MethodArgs) != 1 || req.Msg.MethodArgs[0] == "" {
		return nil, fmt.Errorf(`%w: methodArgs must hold one file path, e.g. ["/var/log/syslog"]`, ErrBadArgs)
	}
	if req.Stream == nil {
		return nil, errors.New("REQTailFile streams its lines: this node cannot stream")
	}
	path := req.Msg.MethodArgs[0]
	if !filepath.IsAbs(path) && req.Env != nil && req.Env.Files != nil {
		path = filepath.Join(req.Env.Files.Dir(), path)
	}
	t, err := openTail(path)
	if err != nil {
		return nil, err
	}
	defer func() { t.f.Close() }()
	out := req.Stream.Lines()
	tick := time.NewTicker(tailPoll)
	defer tick.Stop()
	for {
		if err := t.follow(out); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			// The end of the watch, not a failure. What was read is sent.
			return &Result{}, nil
		case <-tick.C:
		}
	}
}

// tail is a file followed by name.
type tail struct {
	path   string
	f      *os.File
	offset int64
}

// openTail opens path and starts at its end.
func openTail(path string) (*tail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tail %s: %w", path, err)
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("tail %s: not a regular file", path)
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tail %s: %w", path, err)
	}
	return &tail{path: path, f: f, offset: end}, nil
}

// follow copies what was added to the file since the last call to out,
// then moves to a new file under the name (rotation: the rest of the old
// one is read first) or back to the start of a truncated one.
func (t *tail) follow(out io.Writer) error {
	if err := t.copyNew(out); err != nil {
		return err
	}
	cur, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("tail %s: %w", t.path, err)
	}
	byName, err := os.Stat(t.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil // rotated away, the new one not there yet: wait for it
	case err != nil:
		return fmt.Errorf("tail %s: %w", t.path, err)
	case !os.SameFile(cur, byName):
		f, err := os.Open(t.path)
		if err != nil {
			return nil // between rename and create: next time
		}
		t.f.Close()
		t.f, t.offset = f, 0
		return t.copyNew(out)
	case byName.Size() < t.offset:
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("tail %s: %w", t.path, err)
		}
		t.offset = 0
		return t.copyNew(out)
	}
	return nil
}

// copyNew copies from the offset to the current end.
func (t *tail) copyNew(out io.Writer) error {
	n, err := io.Copy(out, t.f)
	t.offset += n
	if err != nil && !errors.Is(err, syscall.EINTR) {
		return fmt.Errorf("tail %s: %w", t.path, err)
	}
	return nil
}
