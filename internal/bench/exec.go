package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
)

// rawExec is the baseline of the command runs: Go's os/exec runs the same
// command line as they do, `bash -c 'echo hi'`, and reads its output,
// total times with window at once.
func rawExec(ctx context.Context, total, window int, progress func(int)) (loadResult, error) {
	t := newTracker()
	return drive(ctx, total, window, t, func(ctx context.Context, i int) (string, error) {
		out, err := exec.CommandContext(ctx, "bash", "-c", "echo hi").Output()
		if err != nil {
			return "", fmt.Errorf("bash -c 'echo hi': %w", err)
		}
		if string(out) != "hi\n" {
			return "", fmt.Errorf("bash -c 'echo hi' printed %q", out)
		}
		key := strconv.Itoa(i)
		t.complete(key)
		return key, nil
	}, progress)
}
