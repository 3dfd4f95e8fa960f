//go:build !unix

package httpapi

// openFlags: lstat and the same-file check stand alone here.
const openFlags = 0
