//go:build linux || darwin || freebsd

package broker

import (
	"fmt"
	"syscall"
)

// freeBytes is the space an unprivileged writer may still use on the file
// system that holds path, and the file system's size.
func freeBytes(path string) (free, total int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("free space of %s: %w", path, err)
	}
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), int64(uint64(st.Blocks) * uint64(st.Bsize)), nil
}
