package config

import "errors"

// Sentinel errors of package config.
var (
	// ErrInvalid wraps every validation error of Validate.
	ErrInvalid = errors.New("invalid configuration")
	// ErrDuration: a duration is neither a number of seconds nor a Go
	// duration.
	ErrDuration = errors.New("invalid duration")
)
