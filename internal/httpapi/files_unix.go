//go:build unix

package httpapi

import "syscall"

// openFlags: never follow a link put in place of what was looked at, and
// never wait on a named pipe put there.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
