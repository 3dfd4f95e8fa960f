//go:build !unix

package audit

import (
	"os"
	"sync"
)

// processLock stands in for flock(2) where it is missing: Log values in
// one process still take turns, but separate processes that share a log
// do not coordinate rotation (each still writes whole lines).
var processLock sync.Mutex

// lockFile takes processLock.
func lockFile(*os.File) error {
	processLock.Lock()
	return nil
}

// unlockFile releases processLock.
func unlockFile(*os.File) error {
	processLock.Unlock()
	return nil
}
