package procguard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A run record is what a guard keeps on disk of its command, so that a
// node that died in the instant between its command ending and the node
// recording the outcome learns, when it starts again, that the command ran
// and what it printed, and does not run it again.
//
// It is one file, <base>.run, of frames: a kind byte, a 4-byte big-endian
// length, then the frame's bytes. Kind 'o' is a piece of standard output,
// 'e' of standard error, as the command writes them (the first RecordLimit
// bytes of each); the guard passes them on to the node as it writes them.
// Kind 'x' (4 bytes: the exit code) comes last, once the command ended by
// itself and all its output is in the file. One file, not one per stream
// and one for the exit code: on this project's machines a file's creation
// costs 100–300 µs, as much as the rest of the guard's work on a command.
//
// The guard is a process of its own: it keeps copying and writes the exit
// code even when the node is killed meanwhile. A command killed with its
// node (SIGKILL from the guard, which the node's death sets off) gets no
// exit code: it did not end, and runs again. A record cut short (the guard
// killed while writing) has no exit frame: the command runs again.

// RecordLimit bounds each of a record's output streams.
const RecordLimit = 64 << 20

// Frame kinds of a run record.
const (
	frameStdout = 'o'
	frameStderr = 'e'
	frameExit   = 'x'
)

// Record is what a run record holds.
type Record struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// ReadRecord returns the record at base of a command that ended, and false
// when it did not end (or there is no record).
func ReadRecord(base string) (*Record, bool) {
	b, err := os.ReadFile(base + ".run")
	if err != nil {
		return readOldRecord(base)
	}
	var r Record
	for len(b) >= 5 {
		kind, n := b[0], binary.BigEndian.Uint32(b[1:5])
		if uint64(len(b)-5) < uint64(n) {
			return nil, false // cut short
		}
		data := b[5 : 5+n]
		b = b[5+n:]
		switch kind {
		case frameStdout:
			r.Stdout = append(r.Stdout, data...)
		case frameStderr:
			r.Stderr = append(r.Stderr, data...)
		case frameExit:
			if n != 4 {
				return nil, false
			}
			r.ExitCode = int(int32(binary.BigEndian.Uint32(data)))
			return &r, true
		default:
			return nil, false
		}
	}
	return nil, false
}

// readOldRecord reads a record as steward kept it before (three files), so
// that a node upgraded while a run's record was on disk still finds it.
func readOldRecord(base string) (*Record, bool) {
	b, err := os.ReadFile(base + ".exit")
	if err != nil {
		return nil, false
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, false
	}
	out, _ := os.ReadFile(base + ".out")
	errOut, _ := os.ReadFile(base + ".err")
	return &Record{ExitCode: code, Stdout: out, Stderr: errOut}, true
}

// RemoveRecord deletes the record at base.
func RemoveRecord(base string) {
	if err := os.Remove(base + ".run"); err == nil || !errors.Is(err, os.ErrNotExist) {
		return
	}
	for _, suffix := range []string{".exit", ".out", ".err"} { // an old record
		os.Remove(base + suffix)
	}
}

// recorder is the guard's side of a run record.
type recorder struct {
	opened       chan struct{} // closed once file is open (or could not be)
	file         *os.File
	mu           sync.Mutex // one frame at a time
	written      [2]int     // bytes kept of stdout, stderr
	outTo, errTo *os.File   // the node's descriptors
	pipes        []*os.File // read ends of the command's output pipes
	copies       sync.WaitGroup
}

// newRecorder starts creating a record's file (nil when base is empty).
// The file is made while the command starts, not before: a file's creation
// costs as much as a quarter of a short command's run here. Frames wait
// for it. If it cannot be made, the command runs without a record and the
// reason goes to the command's standard error, errTo.
func newRecorder(base string, errTo *os.File) *recorder {
	if base == "" {
		return nil
	}
	r := &recorder{opened: make(chan struct{}), errTo: errTo}
	go func() {
		defer close(r.opened)
		f, err := os.OpenFile(base+".run", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(errTo, "steward procguard: no run record: %v\n", err)
			return
		}
		r.file = f
	}()
	return r
}

// frame writes one frame in one write.
func (r *recorder) frame(kind byte, data []byte) {
	buf := make([]byte, 5+len(data))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:5], uint32(len(data)))
	copy(buf[5:], data)
	<-r.opened
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		_, _ = r.file.Write(buf)
	}
}

// wire returns the descriptors the command writes to: pipes whose
// contents the guard copies into the record and on to the node's
// descriptors stdout and stderr.
func (r *recorder) wire(stdout, stderr *os.File) (outW, errW *os.File, err error) {
	r.outTo = stdout
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, err
	}
	r.pipes = []*os.File{outR, errR}
	r.copies.Add(2)
	go r.copy(outR, &tee{r: r, kind: frameStdout, to: stdout})
	go r.copy(errR, &tee{r: r, kind: frameStderr, to: stderr})
	return outW, errW, nil
}

func (r *recorder) copy(from *os.File, to *tee) {
	defer r.copies.Done()
	_, _ = io.Copy(to, from)
}

// finishCopies waits until the command's output is all copied: its group
// is dead, so only a process that escaped it can hold the pipes, and the
// guard stops waiting for such after waitDelay and returns false.
func (r *recorder) finishCopies(waitDelay time.Duration) bool {
	done := make(chan struct{})
	go func() { r.copies.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(waitDelay):
		for _, p := range r.pipes {
			p.Close()
		}
		<-done
		return false
	}
}

// ended writes the exit frame: the command ended by itself and its output
// is all in the file.
func (r *recorder) ended(code int) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
	r.frame(frameExit, b[:])
	r.closeFile()
}

// abandon leaves the record without an exit code: the command did not run.
func (r *recorder) abandon() {
	r.copies.Wait() // the pipes' write ends are closed: the copies end
	r.closeFile()
}

// closeOutputs lets go of the node's descriptors and the record's file.
func (r *recorder) closeOutputs() {
	r.closeFile()
	for _, p := range r.pipes {
		p.Close()
	}
	r.outTo.Close()
	r.errTo.Close()
}

func (r *recorder) closeFile() {
	<-r.opened
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
}

// tee records what it is given as frames of its kind (up to RecordLimit of
// each stream) and passes everything on. When passing on fails (the node
// is gone), it goes on recording: the command must not block or die
// because its node did.
type tee struct {
	r      *recorder
	kind   byte
	to     io.Writer
	broken bool
}

func (t *tee) Write(p []byte) (int, error) {
	i := 0
	if t.kind == frameStderr {
		i = 1
	}
	if keep := min(len(p), RecordLimit-t.r.written[i]); keep > 0 {
		t.r.frame(t.kind, p[:keep])
		t.r.written[i] += keep
	}
	if !t.broken {
		if _, err := t.to.Write(p); err != nil {
			t.broken = true
		}
	}
	return len(p), nil
}

// endedByItself reports whether a command ended on its own rather than by
// the guard's SIGKILL (which is how a command dies with its node).
func endedByItself(st *os.ProcessState) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && !(ws.Signaled() && ws.Signal() == syscall.SIGKILL)
}
