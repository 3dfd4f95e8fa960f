package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// footprint is what one real node process costs.
type footprint struct {
	StartMs float64
	IdleRSS float64 // MiB
}

// measureFootprint runs `steward node run` as a separate process connected
// to the broker at url, measures the time from exec to its socket taking
// connections (it creates the socket after its consumer), then its
// resident memory after idle.
func measureFootprint(ctx context.Context, bin, url, dir string, idle time.Duration, progress func(string)) (footprint, error) {
	nodeDir := filepath.Join(dir, "footprint")
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return footprint{}, err
	}
	sock := filepath.Join(nodeDir, "tmp", "steward.sock")
	cmd := exec.CommandContext(ctx, bin, "node", "run", "--node-name", "footprint", "--broker-address", url,
		"--config-folder", filepath.Join(nodeDir, "etc"), "--data-folder", filepath.Join(nodeDir, "data"),
		"--socket-folder", filepath.Join(nodeDir, "tmp"), "--log-level", "warn")
	cmd.Dir = nodeDir
	log, err := os.Create(filepath.Join(nodeDir, "node.log"))
	if err != nil {
		return footprint{}, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return footprint{}, fmt.Errorf("start node: %w", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if time.Since(begin) > 30*time.Second {
			return footprint{}, fmt.Errorf("node not ready after 30s (see %s)", log.Name())
		}
		time.Sleep(time.Millisecond)
	}
	fp := footprint{StartMs: float64(time.Since(begin).Microseconds()) / 1000}
	end := time.Now().Add(idle)
	for time.Now().Before(end) {
		progress(fmt.Sprintf("idle %s of %s", time.Until(end).Round(time.Second), idle))
		select {
		case <-ctx.Done():
			return fp, ctx.Err()
		case <-time.After(min(time.Second, time.Until(end))):
		}
	}
	rss, err := rssMiB(cmd.Process.Pid)
	if err != nil {
		return fp, err
	}
	fp.IdleRSS = rss
	return fp, nil
}

// rssMiB reads a process's resident set size from /proc.
func rssMiB(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, err
			}
			return float64(kb) / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
