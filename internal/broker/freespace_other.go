//go:build !(linux || darwin || freebsd)

package broker

import (
	"errors"
	"fmt"
)

// freeBytes cannot measure free space here; the supervisor then tries its
// restart anyway and backs off when it fails.
func freeBytes(path string) (free, total int64, err error) {
	return 0, 0, fmt.Errorf("free space of %s: %w", path, errors.ErrUnsupported)
}
