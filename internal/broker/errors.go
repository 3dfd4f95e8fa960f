package broker

import "errors"

// ErrNotReady: the server did not start accepting connections in time.
var ErrNotReady = errors.New("embedded broker not ready")

// ErrInvalidOptions: a supervisor option is missing or out of range.
var ErrInvalidOptions = errors.New("invalid broker supervisor options")

// ErrJetStreamOff: nats-server has turned JetStream off in the running server.
var ErrJetStreamOff = errors.New("JetStream is disabled")

// ErrStreamWrite: a stream's store failed a write and refuses every message after it.
var ErrStreamWrite = errors.New("stream store cannot write")

// ErrSupervisorRunning: Run was called on a supervisor that is already running.
var ErrSupervisorRunning = errors.New("broker supervisor already running")
