package procguard

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
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
const (
	recordEnv = "STEWARD_PROCGUARD_RECORD"
	// RecordLimit bounds each of a record's output files.
	RecordLimit = 64 << 20
)

// SetRecord makes the guard of cmd (made by Command) keep a run record at
// base. An unguarded command (no binary to re-execute) keeps none.
func SetRecord(cmd *exec.Cmd, base string) {
	if cmd.Path == selfExe {
		cmd.Env = append(cmd.Env, recordEnv+"="+base)
	}
}

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
	base     string
	out, err *os.File
}

// newRecorder opens a record's output files (nil when base is empty or
// they cannot be made: the command then runs without a record, and the
// reason goes to standard error).
func newRecorder(base string) *recorder {
	if base == "" {
		return nil
	}
	r := &recorder{base: base}
	var err error
	if r.out, err = os.OpenFile(base+".out", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
		r.err, err = os.OpenFile(base+".err", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "steward procguard: no run record: %v\n", err)
		r.close()
		return nil
	}
	return r
}

// wire makes cmd's output go through the record to the guard's own.
func (r *recorder) wire(cmd *exec.Cmd) {
	cmd.Stdout = &tee{file: r.out, to: os.Stdout}
	cmd.Stderr = &tee{file: r.err, to: os.Stderr}
}

// ended writes the exit code: the command ended by itself and cmd.Wait
// returned, so its output is all in the files.
func (r *recorder) ended(code int) {
	r.close()
	tmp := r.base + ".exit.tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(code)+"\n"), 0o600); err == nil {
		err = os.Rename(tmp, r.base+".exit")
	}
}

func (r *recorder) close() {
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
