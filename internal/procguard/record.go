package procguard

import (
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
// and what it printed, and does not run it again:
//
//	<base>.out, <base>.err  the command's output and standard error, as the
//	                        command writes them (the first RecordLimit
//	                        bytes of each), written by the guard, which
//	                        also passes them on to the node;
//	<base>.exit             the exit code, written once the command ended
//	                        by itself and its output is all in the files.
//
// The guard is a process of its own: it keeps copying and writes the exit
// code even when the node is killed meanwhile. A command killed with its
// node (SIGKILL from the guard, which the node's death sets off) gets no
// exit code: it did not end, and runs again.

// RecordLimit bounds each of a record's output files.
const RecordLimit = 64 << 20

// Record is what a run record holds.
type Record struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// ReadRecord returns the record at base of a command that ended, and false
// when it did not end (or there is no record).
func ReadRecord(base string) (*Record, bool) {
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
	for _, suffix := range []string{".exit", ".out", ".err"} {
		os.Remove(base + suffix)
	}
}

// recorder is the guard's side of a run record.
type recorder struct {
	base         string
	out, err     *os.File   // the record's files
	outTo, errTo *os.File   // the node's descriptors
	pipes        []*os.File // read ends of the command's output pipes
	copies       sync.WaitGroup
}

// newRecorder opens a record's output files (nil when base is empty or
// they cannot be made: the command then runs without a record, and the
// reason goes to the command's standard error, errTo).
func newRecorder(base string, errTo *os.File) *recorder {
	if base == "" {
		return nil
	}
	r := &recorder{base: base, errTo: errTo}
	var err error
	if r.out, err = os.OpenFile(base+".out", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
		r.err, err = os.OpenFile(base+".err", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	if err != nil {
		fmt.Fprintf(errTo, "steward procguard: no run record: %v\n", err)
		r.closeFiles()
		return nil
	}
	return r
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
	go r.copy(outR, &tee{file: r.out, to: stdout})
	go r.copy(errR, &tee{file: r.err, to: stderr})
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

// ended writes the exit code: the command ended by itself and its output
// is all in the files.
func (r *recorder) ended(code int) {
	r.closeFiles()
	tmp := r.base + ".exit.tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(code)+"\n"), 0o600); err == nil {
		_ = os.Rename(tmp, r.base+".exit")
	}
}

// abandon leaves the record without an exit code: the command did not run.
func (r *recorder) abandon() {
	r.copies.Wait() // the pipes' write ends are closed: the copies end
	r.closeFiles()
}

// closeOutputs lets go of the node's descriptors and the record's files.
func (r *recorder) closeOutputs() {
	r.closeFiles()
	for _, p := range r.pipes {
		p.Close()
	}
	r.outTo.Close()
	r.errTo.Close()
}

func (r *recorder) closeFiles() {
	if r.out != nil {
		r.out.Close()
	}
	if r.err != nil {
		r.err.Close()
	}
}

// tee writes to its file (up to RecordLimit) and passes everything on.
// When passing on fails (the node is gone), it goes on writing the file:
// the command must not block or die because its node did.
type tee struct {
	file    *os.File
	written int
	to      io.Writer
	broken  bool
}

func (t *tee) Write(p []byte) (int, error) {
	if keep := min(len(p), RecordLimit-t.written); keep > 0 {
		if _, err := t.file.Write(p[:keep]); err == nil {
			t.written += keep
		}
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
