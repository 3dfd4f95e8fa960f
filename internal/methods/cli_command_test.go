package methods

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/datafolder"
	"github.com/stewardfleet/steward/internal/message"
)

// cliRequest is a REQCliCommand request on a node whose data folder is a
// fresh temporary directory.
func cliRequest(t testing.TB, args ...string) *Request {
	t.Helper()
	files, err := datafolder.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = files.Close() })
	return &Request{
		Msg:     &message.Message{ToNode: "node1", Method: "REQCliCommand", MethodArgs: args},
		Attempt: 1,
		Env:     &Env{NodeName: "node1", Files: files},
		Log:     slog.New(slog.DiscardHandler),
	}
}

func TestCLICommandRegistered(t *testing.T) {
	for _, name := range []string{"REQCliCommand", "REQnCliCommand", "cli"} {
		s, err := Default().Lookup(name)
		if err != nil || s.Name != "REQCliCommand" || s.Kind != Command {
			t.Errorf("Lookup(%q) = %s, kind %d, %v", name, s.Name, s.Kind, err)
		}
	}
}

func TestCLICommand(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantOut    string
		wantStderr string
		wantCode   int
		wantErr    string // substring of the error; empty: no error
	}{
		{
			name:    "stdout",
			args:    []string{"sh", "-c", "echo hello; echo world"},
			wantOut: "hello\nworld\n",
		},
		{
			name:    "no shell added",
			args:    []string{"echo", "a;b", "$HOME", "*"},
			wantOut: "a;b $HOME *\n",
		},
		{
			name:       "failure keeps output, stderr and code",
			args:       []string{"sh", "-c", "echo out; echo err >&2; exit 3"},
			wantOut:    "out\n",
			wantStderr: "err\n",
			wantCode:   3,
			wantErr:    "exited with code 3",
		},
		{
			name:     "killed by a signal",
			args:     []string{"sh", "-c", "echo before; kill -KILL $$"},
			wantOut:  "before\n",
			wantCode: 137,
			wantErr:  "exited with code 137",
		},
		{
			name:       "path that does not exist",
			args:       []string{"./no-such-program"},
			wantStderr: "steward procguard:",
			wantCode:   127,
			wantErr:    "exited with code 127",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runCLICommand(t.Context(), cliRequest(t, tt.args...))
			if tt.wantErr == "" && err != nil {
				t.Fatalf("error %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if string(res.Output) != tt.wantOut {
				t.Errorf("output %q, want %q", res.Output, tt.wantOut)
			}
			if !strings.HasPrefix(string(res.Stderr), tt.wantStderr) || (tt.wantStderr == "" && len(res.Stderr) > 0) {
				t.Errorf("stderr %q, want %q", res.Stderr, tt.wantStderr)
			}
			if res.ExitCode == nil || *res.ExitCode != tt.wantCode {
				t.Errorf("exit code %v, want %d", res.ExitCode, tt.wantCode)
			}
		})
	}
}

func TestCLICommandWorkingDirectory(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	withFolder := cliRequest(t, "pwd")
	noFolder := cliRequest(t, "pwd")
	noFolder.Env.Files = nil
	tests := []struct {
		name string
		req  *Request
		want string
	}{
		{"data folder", withFolder, withFolder.Env.Files.Dir()},
		{"no data folder", noFolder, cwd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := runCLICommand(t.Context(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(res.Output)); got != tt.want {
				t.Errorf("ran in %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCLICommandBadArgs(t *testing.T) {
	for _, args := range [][]string{nil, {}, {""}} {
		t.Run(fmt.Sprintf("%q", args), func(t *testing.T) {
			res, err := runCLICommand(t.Context(), cliRequest(t, args...))
			if !errors.Is(err, ErrBadArgs) {
				t.Errorf("error %v, want one wrapping ErrBadArgs", err)
			}
			if res != nil {
				t.Errorf("result %+v for no command", res)
			}
			if err := cliCommand.Validate(&message.Message{MethodArgs: args}); !errors.Is(err, message.ErrFieldValue) {
				t.Errorf("Validate: %v, want an error wrapping message.ErrFieldValue", err)
			}
		})
	}
	if err := cliCommand.Validate(&message.Message{MethodArgs: []string{"uptime"}}); err != nil {
		t.Errorf("Validate rejects a command line: %v", err)
	}
}

func TestCLICommandNotFound(t *testing.T) {
	res, err := runCLICommand(t.Context(), cliRequest(t, "steward-test-no-such-command", "arg"))
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("error %v, want one wrapping exec.ErrNotFound", err)
	}
	if res != nil {
		t.Errorf("result %+v for a command that did not start", res)
	}
}

func TestCLICommandTruncates(t *testing.T) {
	tests := []struct {
		name       string
		limit      int
		args       []string
		wantOut    string
		wantStderr string
	}{
		{
			name:    "stdout and stderr each capped",
			limit:   10,
			args:    []string{"sh", "-c", "printf 0123456789abcdef; printf 0123456789ABCDEFGH >&2"},
			wantOut: "0123456789",
			wantStderr: "0123456789\n" +
				"steward: stdout truncated after 10 bytes (6 more bytes discarded)\n" +
				"steward: stderr truncated after 10 bytes (8 more bytes discarded)\n",
		},
		{
			// Far more than a pipe holds: the command finishes only if
			// the dropped output is still read.
			name:       "keeps draining",
			limit:      1 << 20,
			args:       []string{"sh", "-c", "head -c 3145728 /dev/zero | tr '\\0' x"},
			wantOut:    strings.Repeat("x", 1<<20),
			wantStderr: "steward: stdout truncated after 1 MiB (2097152 more bytes discarded)\n",
		},
		{
			name:    "exactly at the cap",
			limit:   4,
			args:    []string{"printf", "abcd"},
			wantOut: "abcd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := maxCommandOutput
			maxCommandOutput = tt.limit
			t.Cleanup(func() { maxCommandOutput = orig })

			res, err := runCLICommand(t.Context(), cliRequest(t, tt.args...))
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != tt.wantOut {
				t.Errorf("output %.40q (%d bytes), want %.40q (%d bytes)", res.Output, len(res.Output), tt.wantOut, len(tt.wantOut))
			}
			if string(res.Stderr) != tt.wantStderr {
				t.Errorf("stderr %q, want %q", res.Stderr, tt.wantStderr)
			}
		})
	}
}

// TestCLICommandTimeout gives a command that outlives its deadline, with a
// background child, a deadline that passes. The deadline starts short and
// doubles until the command got as far as writing its pid file, so a slow
// machine cannot make the test fail.
func TestCLICommandTimeout(t *testing.T) {
	for timeout := 50 * time.Millisecond; ; timeout *= 2 {
		if timeout > time.Minute {
			t.Fatal("the command never wrote its pid file")
		}
		req := cliRequest(t, "sh", "-c", `echo started; sleep 60 & echo $! > sleep.pid; wait; echo done`)
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		res, err := runCLICommand(ctx, req)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v, want one wrapping context.DeadlineExceeded", err)
		}
		if res == nil {
			t.Fatal("no partial result")
		}
		if strings.Contains(string(res.Output), "done") {
			t.Errorf("output %q: the command ran to its end", res.Output)
		}
		if res.ExitCode == nil || *res.ExitCode != 137 {
			t.Errorf("exit code %v, want 137 (SIGKILL)", res.ExitCode)
		}
		pid, ok := readCLIPid(t, filepath.Join(req.Env.Files.Dir(), "sleep.pid"))
		if !ok {
			continue // killed before it got that far: allow more time
		}
		if string(res.Output) != "started\n" {
			t.Errorf("partial output %q, want %q", res.Output, "started\n")
		}
		waitSleepGone(t, pid)
		return
	}
}

// TestCLICommandCancel stops a running command by cancelling its context,
// as a node does when it shuts down.
func TestCLICommandCancel(t *testing.T) {
	req := cliRequest(t, "sh", "-c", `sleep 60 & echo $! > sleep.pid.tmp && mv sleep.pid.tmp sleep.pid; wait; echo done`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := runCLICommand(ctx, req)
		done <- outcome{res, err}
	}()

	pidFile := filepath.Join(req.Env.Files.Dir(), "sleep.pid")
	var pid int
	cliPoll(t, "the pid file", func() bool {
		var ok bool
		pid, ok = readCLIPid(t, pidFile)
		return ok
	})
	cancel()
	got := <-done
	if !errors.Is(got.err, context.Canceled) {
		t.Fatalf("error %v, want one wrapping context.Canceled", got.err)
	}
	if got.res == nil || strings.Contains(string(got.res.Output), "done") {
		t.Errorf("result %+v: want a partial one", got.res)
	}
	waitSleepGone(t, pid)
}

// readCLIPid reads a pid the command wrote; ok is false while the file
// is missing or incomplete.
func readCLIPid(t testing.TB, path string) (pid int, ok bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	return pid, err == nil
}

// waitSleepGone waits until pid is no longer a running sleep: gone, a
// zombie, or reused by another program.
func waitSleepGone(t testing.TB, pid int) {
	t.Helper()
	cliPoll(t, fmt.Sprintf("sleep %d to end", pid), func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			return true
		}
		state := strings.Fields(s[end+1:])
		return s[open+1:end] != "sleep" || len(state) == 0 || state[0] == "Z" || state[0] == "X"
	})
}

// cliPoll polls cond until it holds, failing after a generous deadline.
func cliPoll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
