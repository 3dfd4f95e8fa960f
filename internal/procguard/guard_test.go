package procguard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Many commands at once through one guard: each gets its own output and
// exit code.
func TestManyCommandsAtOnce(t *testing.T) {
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd, err := Command(t.Context(), []string{"sh", "-c", `echo "out $0"; echo "err $0" >&2; exit $(($0 % 7))`, fmt.Sprint(i)})
			if err != nil {
				errs <- err
				return
			}
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			_ = cmd.Run()
			if got, want := out.String(), fmt.Sprintf("out %d\n", i); got != want {
				errs <- fmt.Errorf("command %d: stdout %q, want %q", i, got, want)
			}
			if got, want := errOut.String(), fmt.Sprintf("err %d\n", i); got != want {
				errs <- fmt.Errorf("command %d: stderr %q, want %q", i, got, want)
			}
			if cmd.ExitCode() != i%7 {
				errs <- fmt.Errorf("command %d: exit code %d, want %d", i, cmd.ExitCode(), i%7)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Output larger than a pipe's buffer, to a writer and to a file.
func TestLargeOutput(t *testing.T) {
	const size = 1 << 20
	script := fmt.Sprintf("head -c %d /dev/zero", size)
	t.Run("writer", func(t *testing.T) {
		cmd, err := Command(t.Context(), []string{"sh", "-c", script})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Run(); err != nil || out.Len() != size {
			t.Errorf("Run: %v, %d bytes of output, want %d", err, out.Len(), size)
		}
	})
	t.Run("file", func(t *testing.T) {
		f, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd, err := Command(t.Context(), []string{"sh", "-c", script})
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = f
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		if st, err := f.Stat(); err != nil || st.Size() != size {
			t.Errorf("file holds %v bytes (%v), want %d", st.Size(), err, size)
		}
	})
}

// A process that leaves the group keeps the output open: Wait gives up
// after WaitDelay and says so; the command's own exit code stands.
func TestEscapedProcessHoldsTheOutput(t *testing.T) {
	for _, record := range []bool{false, true} {
		t.Run(fmt.Sprintf("record=%v", record), func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "escaped")
			cmd, err := Command(t.Context(), []string{"sh", "-c", `setsid sh -c 'echo $$ > "$0.tmp"; mv "$0.tmp" "$0"; exec sleep 30' "$0" & while [ ! -s "$0" ]; do sleep 0.01; done; echo done`, pidFile})
			if err != nil {
				t.Fatal(err)
			}
			if record {
				cmd.Record = filepath.Join(t.TempDir(), "run")
			}
			var out bytes.Buffer
			cmd.Stdout = &out
			cmd.WaitDelay = 300 * time.Millisecond
			err = cmd.Run()
			t.Cleanup(func() {
				if b, err := os.ReadFile(pidFile); err == nil {
					var pid int
					fmt.Sscan(string(b), &pid)
					if pid > 0 {
						_ = killGroup(pid)
					}
				}
			})
			if !errors.Is(err, exec.ErrWaitDelay) {
				t.Errorf("Run: %v, want exec.ErrWaitDelay", err)
			}
			if cmd.ExitCode() != 0 || out.String() != "done\n" {
				t.Errorf("exit code %d, output %q", cmd.ExitCode(), out.String())
			}
		})
	}
}

// A context done before Start: nothing starts.
func TestContextDoneBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cmd, err := Command(ctx, []string{"sh", "-c", "touch should-not-exist"})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = t.TempDir()
	cancel()
	if err := cmd.Run(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(cmd.Dir, "should-not-exist")); err == nil {
		t.Error("the command ran")
	}
}

// The context's kill is told apart from the command killing itself.
func TestKilledByContextOrByItself(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	cmd, err := Command(ctx, []string{"sleep", "30"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Run(); !errors.Is(err, context.DeadlineExceeded) || cmd.ExitCode() != 137 {
		t.Errorf("at the deadline: %v, exit code %d; want DeadlineExceeded, 137", err, cmd.ExitCode())
	}

	cmd, err = Command(t.Context(), []string{"sh", "-c", "kill -KILL $$"})
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Run()
	var exitErr *ExitError
	if !errors.As(err, &exitErr) || exitErr.Code != 137 {
		t.Errorf("killed by itself: %v, want ExitError 137", err)
	}
}

// The raw baseline and the guard, one at a time and 64 at once: `go test
// -run '^$' -bench . ./internal/procguard`.
func BenchmarkExec(b *testing.B) {
	args := []string{"bash", "-c", "echo hi"}
	raw := func() error {
		cmd := exec.Command(args[0], args[1:]...)
		var out bytes.Buffer
		cmd.Stdout = &out
		return cmd.Run()
	}
	guarded := func() error {
		cmd, err := Command(context.Background(), args)
		if err != nil {
			return err
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		return cmd.Run()
	}
	recorded := func(dir string) func() error {
		var n sync.Mutex
		i := 0
		return func() error {
			cmd, err := Command(context.Background(), args)
			if err != nil {
				return err
			}
			n.Lock()
			i++
			cmd.Record = filepath.Join(dir, fmt.Sprint(i))
			n.Unlock()
			var out bytes.Buffer
			cmd.Stdout = &out
			return cmd.Run()
		}
	}
	for _, bc := range []struct {
		name string
		run  func() error
	}{
		{"raw", raw},
		{"guarded", guarded},
		{"guarded+record", recorded(b.TempDir())},
	} {
		b.Run(bc.name+"/1", func(b *testing.B) {
			for b.Loop() {
				if err := bc.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/64", func(b *testing.B) {
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 goroutines
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.run(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// A record holds interleaved output in frames; one cut short, or without
// its exit frame, says the command did not end; a record in the earlier
// format (three files) is still read.
func TestRecordFormat(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "run")
	cmd, err := Command(t.Context(), []string{"sh", "-c", `for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; head -c 200000 /dev/zero; exit 5`})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Record = base
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	r, ok := ReadRecord(base)
	if !ok || r.ExitCode != 5 || !bytes.Equal(r.Stdout, out.Bytes()) || !bytes.Equal(r.Stderr, errOut.Bytes()) || len(r.Stdout) != 200000+18 {
		t.Fatalf("record ok=%v code=%v, %d bytes of output (node got %d), stderr %q", ok, r.ExitCode, len(r.Stdout), out.Len(), r.Stderr)
	}

	whole, err := os.ReadFile(base + ".run")
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int{len(whole) - 1, len(whole) - 9, 3} {
		if err := os.WriteFile(base+".run", whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok := ReadRecord(base); ok {
			t.Errorf("a record cut to %d of %d bytes says the command ended", cut, len(whole))
		}
	}
	RemoveRecord(base)
	if _, err := os.Stat(base + ".run"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record still there after RemoveRecord: %v", err)
	}

	old := filepath.Join(dir, "old")
	for suffix, content := range map[string]string{".out": "hello\n", ".err": "", ".exit": "3\n"} {
		if err := os.WriteFile(old+suffix, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r, ok := ReadRecord(old); !ok || r.ExitCode != 3 || string(r.Stdout) != "hello\n" {
		t.Errorf("old record: %+v %v", r, ok)
	}
	RemoveRecord(old)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left after RemoveRecord: %v", entries)
	}
}
