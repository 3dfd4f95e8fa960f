package procguard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeNodeEnv makes the test binary act as a node: it runs a guarded
// command that records its pids in the named file, then waits for it. The
// node-death test SIGKILLs that process.
const fakeNodeEnv = "PROCGUARD_TEST_FAKE_NODE"

func TestMain(m *testing.M) {
	MaybeRun()
	// A race-enabled binary sleeps a second when it exits with status 0;
	// the guards this binary starts need not.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	if pidFile := os.Getenv(fakeNodeEnv); pidFile != "" {
		os.Exit(fakeNode(pidFile))
	}
	if base := os.Getenv(recordNodeEnv); base != "" {
		os.Exit(recordNode(base))
	}
	os.Exit(m.Run())
}

// recordNode runs a recorded command and never reads its output (it is
// killed by the test).
func recordNode(base string) int {
	cmd, err := Command(context.Background(), []string{"sh", "-c", os.Getenv("PROCGUARD_TEST_SCRIPT"), base})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 1
	}
	defer r.Close()
	cmd.Stdout = w // nobody reads: the output sits in the pipe, as when a node dies before reading
	cmd.Record = base
	_ = cmd.Run()
	select {}
}

func fakeNode(pidFile string) int {
	cmd, err := Command(context.Background(), pidScript(pidFile, true))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// pidScript is a shell command that starts `sleep 60` in the background,
// writes "<shell pid> <sleep pid> <shell's parent pid>" to pidFile
// atomically and, if wait is set, waits for the sleep.
func pidScript(pidFile string, wait bool) []string {
	script := `sleep 60 & echo "$$ $! $PPID" > "$1.tmp" && mv "$1.tmp" "$1"`
	if wait {
		script += "; wait"
	}
	return []string{"sh", "-c", script, "sh", pidFile}
}

// tree is the processes of a pidScript run.
type tree struct {
	shell, sleep, parent proc
}

// proc is a process as it was when the test saw it: the start time tells
// it apart from a later process that reuses the pid.
type proc struct {
	pid   int
	start string
}

// readTree waits for pidScript's file and identifies its processes.
func readTree(t testing.TB, pidFile string) tree {
	t.Helper()
	var data []byte
	waitFor(t, "pid file "+pidFile, func() bool {
		var err error
		data, err = os.ReadFile(pidFile)
		return err == nil
	})
	f := strings.Fields(string(data))
	if len(f) != 3 {
		t.Fatalf("pid file holds %q, want three pids", data)
	}
	var tr tree
	for i, p := range []*proc{&tr.shell, &tr.sleep, &tr.parent} {
		pid, err := strconv.Atoi(f[i])
		if err != nil {
			t.Fatalf("pid file holds %q: %v", data, err)
		}
		start, ok := procStart(pid)
		if !ok {
			t.Fatalf("process %d (field %d of %q) is not running", pid, i+1, data)
		}
		*p = proc{pid: pid, start: start}
	}
	return tr
}

// procStart returns a live process's start time (field 22 of
// /proc/<pid>/stat); ok is false when the process is gone or a zombie.
func procStart(pid int) (start string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// The command name (field 2) may hold spaces; it ends at the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return "", false
	}
	return f[19], true
}

func (p proc) alive() bool {
	start, ok := procStart(p.pid)
	return ok && start == p.start
}

// waitGone fails the test unless every process ends before the deadline.
func waitGone(t testing.TB, procs ...proc) {
	t.Helper()
	for _, p := range procs {
		waitFor(t, fmt.Sprintf("process %d to end", p.pid), func() bool { return !p.alive() })
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline. It never decides anything from elapsed time alone.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unguarded makes Command take its fallback for the rest of the test.
func unguarded(t testing.TB) {
	t.Helper()
	orig := executable
	executable = func() (string, error) { return "", errors.New("no executable in this test") }
	t.Cleanup(func() { executable = orig })
}

var modes = []struct {
	name    string
	guarded bool
}{
	{"guarded", true},
	{"unguarded", false},
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   int
	}{
		{"success", "exit 0", 0},
		{"failure", "exit 7", 7},
		{"killed by SIGTERM", "kill -TERM $$", 128 + int(syscall.SIGTERM)},
		{"killed by SIGKILL", "kill -KILL $$", 128 + int(syscall.SIGKILL)},
	}
	for _, mode := range modes {
		for _, tt := range tests {
			t.Run(mode.name+"/"+tt.name, func(t *testing.T) {
				if !mode.guarded {
					unguarded(t)
				}
				cmd, err := Command(t.Context(), []string{"sh", "-c", tt.script})
				if err != nil {
					t.Fatal(err)
				}
				err = cmd.Run()
				if got := cmd.ExitCode(); got != tt.want {
					t.Errorf("exit code %d (err %v), want %d", got, err, tt.want)
				}
				if (err == nil) != (tt.want == 0) {
					t.Errorf("Run returned %v for exit code %d", err, tt.want)
				}
			})
		}
	}
}

func TestOutput(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			if !mode.guarded {
				unguarded(t)
			}
			script := `echo out; echo err >&2; echo "marker=${` + markerEnv + `-unset}"; pwd`
			cmd, err := Command(t.Context(), []string{"sh", "-c", script})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			var stdout, stderr bytes.Buffer
			cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("Run: %v (stderr %q)", err, stderr.String())
			}
			wantOut := "out\nmarker=unset\n" + dir + "\n"
			if stdout.String() != wantOut {
				t.Errorf("stdout %q, want %q", stdout.String(), wantOut)
			}
			if stderr.String() != "err\n" {
				t.Errorf("stderr %q, want %q", stderr.String(), "err\n")
			}
		})
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
	}{
		{"nil", nil, ErrEmptyCommand},
		{"empty name", []string{""}, ErrEmptyCommand},
		{"not in PATH", []string{"steward-test-no-such-command"}, exec.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Command(t.Context(), tt.args)
			if !errors.Is(err, tt.want) {
				t.Errorf("Command(%q) = %v, want an error wrapping %v", tt.args, err, tt.want)
			}
		})
	}
}

func TestGuardCannotRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "not-executable"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		want int
	}{
		{"missing", "./no-such-program", exitNotFound},
		{"not executable", "./not-executable", exitCannotRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := Command(t.Context(), []string{tt.path})
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Dir, cmd.Stderr = dir, &stderr
			err = cmd.Run()
			if got := cmd.ExitCode(); got != tt.want {
				t.Errorf("exit code %d (err %v), want %d", got, err, tt.want)
			}
			if !strings.Contains(stderr.String(), "steward procguard:") {
				t.Errorf("stderr %q does not say why", stderr.String())
			}
		})
	}
}

// TestContextKillsGroup cancels a command whose shell waits for a
// background child: both must die.
func TestContextKillsGroup(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			if !mode.guarded {
				unguarded(t)
			}
			pidFile := filepath.Join(t.TempDir(), "pids")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			cmd, err := Command(ctx, pidScript(pidFile, true))
			if err != nil {
				t.Fatal(err)
			}
			var stdout bytes.Buffer
			cmd.Stdout = &stdout // a pipe the background child also holds
			errc := make(chan error, 1)
			go func() { errc <- cmd.Run() }()

			tr := readTree(t, pidFile)
			cancel()
			if err := <-errc; err == nil {
				t.Error("Run returned nil after the context was cancelled")
			}
			waitGone(t, tr.shell, tr.sleep)
		})
	}
}

// guardPid is the pid of the running guard.
func guardPid(t testing.TB) int {
	t.Helper()
	g, err := theGuard()
	if err != nil {
		t.Fatal(err)
	}
	return g.pid
}

// TestSignalToGuardKillsGroup is a plain `kill <guard pid>`: the guard
// kills its commands' groups, and the node starts a new guard.
func TestSignalToGuardKillsGroup(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			cmd, err := Command(t.Context(), pidScript(pidFile, true))
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- cmd.Wait() }()

			tr := readTree(t, pidFile)
			guard := guardPid(t)
			if tr.parent.pid != guard {
				t.Fatalf("the shell's parent is %d, not the guard %d", tr.parent.pid, guard)
			}
			if err := syscall.Kill(guard, sig); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, ErrGuardDied) {
				t.Errorf("Wait after the guard was signalled: %v, want ErrGuardDied", err)
			}
			waitGone(t, tr.parent, tr.shell, tr.sleep)

			// The next command gets a new guard.
			cmd, err = Command(t.Context(), []string{"sh", "-c", "exit 4"})
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Run(); cmd.ExitCode() != 4 {
				t.Errorf("command after the guard died: %v, exit code %d", err, cmd.ExitCode())
			}
			if guardPid(t) == guard {
				t.Error("the dead guard is still the current one")
			}
		})
	}
}

// TestLeftoversKilled: a background job still running when the command's
// main process ends is killed, and Wait does not wait for it.
func TestLeftoversKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd, err := Command(t.Context(), pidScript(pidFile, false))
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cmd.Stdout = &stdout // held by the background sleep until it dies
	// Without the guard's cleanup, Wait would give up on the pipe after
	// WaitDelay and return exec.ErrWaitDelay.
	if err := cmd.Run(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) != 3 {
		t.Fatalf("pid file holds %q", data)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil {
		t.Fatal(err)
	}
	// Wait returned, so the sleep closed its end of the pipe: it is dead,
	// or at worst dying. The start time is unknown: any process with its
	// pid that is not a sleep is a newcomer.
	waitFor(t, fmt.Sprintf("sleep %d to end", pid), func() bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		_, ok := procStart(pid)
		return err != nil || !ok || strings.TrimSpace(string(comm)) != "sleep"
	})
}

// TestNodeDeathKillsGroup runs a fake node (this test binary), lets it
// start a guarded shell with a background child, SIGKILLs the node and
// checks that the guard, the shell and its child all die.
func TestNodeDeathKillsGroup(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "pids")
	node := exec.Command(self, "-test.run=^$")
	node.Env = append(os.Environ(), fakeNodeEnv+"="+pidFile)
	var nodeErr bytes.Buffer
	node.Stderr = &nodeErr
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = node.Process.Kill()
		_ = node.Wait()
	})

	tr := readTree(t, pidFile) // tr.parent is the guard
	if err := node.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = node.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("fake node ended with %v, not SIGKILL (stderr %q)", err, nodeErr.String())
	}
	waitGone(t, tr.parent, tr.shell, tr.sleep)
}

// The guard keeps a run record: the command's output as it writes it, and
// its exit code when it ended by itself; nothing when it was killed.
func TestRunRecord(t *testing.T) {
	for _, tt := range []struct {
		name, script string
		code         int
		out, errOut  string
	}{
		{"success", "echo hello; echo oops >&2; exit 0", 0, "hello\n", "oops\n"},
		{"failure", "echo partial; exit 3", 3, "partial\n", ""},
		{"ended by its own signal", "echo bye; kill -TERM $$", 128 + int(syscall.SIGTERM), "bye\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "run")
			cmd, err := Command(t.Context(), []string{"sh", "-c", tt.script})
			if err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			cmd.Record = base
			_ = cmd.Run()
			if out.String() != tt.out {
				t.Errorf("the node got %q, want %q", out.String(), tt.out)
			}
			r, ok := ReadRecord(base)
			if !ok || r.ExitCode != tt.code || string(r.Stdout) != tt.out || string(r.Stderr) != tt.errOut {
				t.Errorf("record %+v %v, want code %d, %q, %q", r, ok, tt.code, tt.out, tt.errOut)
			}
			RemoveRecord(base)
			if _, ok := ReadRecord(base); ok {
				t.Error("record still there after RemoveRecord")
			}
		})
	}
	t.Run("killed at its deadline", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "run")
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		cmd, err := Command(ctx, []string{"sh", "-c", "sleep 30"})
		if err != nil {
			t.Fatal(err)
		}
		cmd.Record = base
		_ = cmd.Run()
		if _, ok := ReadRecord(base); ok {
			t.Error("a killed command has an exit code in its record")
		}
	})
	t.Run("the command does not see the setting", func(t *testing.T) {
		base := filepath.Join(t.TempDir(), "run")
		cmd, err := Command(t.Context(), []string{"sh", "-c", "env"})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Record = base
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), markerEnv+"=") {
			t.Errorf("the command's environment holds the guard's settings:\n%s", out.String())
		}
	})
}

// recordNodeEnv makes the test binary act as a node that runs a recorded
// command and is then SIGKILLed.
const recordNodeEnv = "PROCGUARD_TEST_RECORD_NODE"

// A node killed while its command runs: the command dies, no exit code.
// A node killed right after its command ended (the command printed and
// exited; the node had not read it): the record holds the exit code and
// the whole output.
func TestRunRecordWhenTheNodeDies(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		script string // run by the fake node's guard; it touches "<base>.ran" when done printing
		ended  bool
	}{
		{"mid-run", `echo started; touch "$0.ran"; sleep 30`, false},
		{"right after it ended", `echo all of it; touch "$0.ran"`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := filepath.Join(t.TempDir(), "run")
			node := exec.Command(self, "-test.run=^$")
			node.Env = append(os.Environ(), recordNodeEnv+"="+base, "PROCGUARD_TEST_SCRIPT="+tt.script)
			if err := node.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { node.Process.Kill(); node.Wait() })
			deadline := time.Now().Add(10 * time.Second)
			for {
				if _, err := os.Stat(base + ".ran"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the command did not run")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tt.ended {
				// Give the command time to exit; the fake node never reads.
				for range 100 {
					if _, ok := ReadRecord(base); ok {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			node.Process.Signal(syscall.SIGKILL)
			node.Wait()
			var r *Record
			var ok bool
			for range 200 { // the guard writes after its node died
				if r, ok = ReadRecord(base); ok || !tt.ended {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if ok != tt.ended {
				t.Fatalf("record says ended=%v, want %v", ok, tt.ended)
			}
			if ok && (r.ExitCode != 0 || string(r.Stdout) != "all of it\n") {
				t.Errorf("record %+v", r)
			}
		})
	}
}
