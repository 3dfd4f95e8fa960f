package message

import (
	"errors"
	"fmt"
)

// Sentinel errors. Each validation error wraps exactly one of them, so a
// caller can tell the kind with errors.Is and send its Code to other nodes.
var (
	// ErrBadSignature: a node that checks signatures got a message that is
	// unsigned, signed by a key it does not trust for the sender, or
	// changed since it was signed.
	ErrBadSignature = errors.New("bad signature")
	// ErrMalformed: the input is not JSON, or not a message or array of them.
	ErrMalformed = errors.New("malformed message")
	// ErrUnknownField: the input has a field steward does not know.
	ErrUnknownField = errors.New("unknown field")
	// ErrFieldType: a field has the wrong JSON type.
	ErrFieldType = errors.New("wrong field type")
	// ErrFieldValue: a field has a value outside what it allows.
	ErrFieldValue = errors.New("invalid field value")
	// ErrNoTarget: neither toNode nor toNodes names a node, or their
	// target expressions select none.
	ErrNoTarget = errors.New("missing toNode")
	// ErrUnresolvedTarget: a target expression ("*", a label selector)
	// reached an input that cannot resolve it, or the node registry could
	// not be read to resolve it.
	ErrUnresolvedTarget = errors.New("unresolved target")
	// ErrBadNodeName: a node name cannot be used as a subject token.
	ErrBadNodeName = errors.New("invalid node name")
	// ErrNoMethod: the message names no method.
	ErrNoMethod = errors.New("missing method")
	// ErrUnknownMethod: the method is not one steward knows.
	ErrUnknownMethod = errors.New("unknown method")
	// ErrBadPath: directory or fileName would leave the data folder or is
	// not a usable name.
	ErrBadPath = errors.New("invalid path")
	// ErrTooLarge: the message is larger than the broker accepts.
	ErrTooLarge = errors.New("message too large")
	// ErrReserved: the operator set a field that steward sets itself.
	ErrReserved = errors.New("field set by steward")
)

// Code is a short stable name for an error, carried in status records and
// error reports so other nodes and scripts can match it.
type Code string

// Codes for the sentinels above; CodeInternal covers everything else.
const (
	CodeMalformed     Code = "malformed"
	CodeBadSignature  Code = "bad_signature"
	CodeDenied        Code = "denied"      // by the receiving node's policy
	CodeReplayed      Code = "replayed"    // a copy of a message the node already ended, or one too old to be anything else
	CodeUnsolicited   Code = "unsolicited" // a reply to a request the receiving node did not send
	CodeNotRunning    Code = "not_running" // the method is stopped on the node, or not for this sender
	CodeUnknownField  Code = "unknown_field"
	CodeFieldType     Code = "field_type"
	CodeFieldValue    Code = "field_value"
	CodeNoTarget      Code = "missing_target"
	CodeUnresolved    Code = "unresolved_target"
	CodeBadNodeName   Code = "bad_node_name"
	CodeNoMethod      Code = "missing_method"
	CodeUnknownMethod Code = "unknown_method"
	CodeBadPath       Code = "bad_path"
	CodeTooLarge      Code = "too_large"
	CodeReserved      Code = "reserved_field"
	CodeInternal      Code = "internal"
)

var codes = []struct {
	err  error
	code Code
}{
	{ErrMalformed, CodeMalformed},
	{ErrBadSignature, CodeBadSignature},
	{ErrUnknownField, CodeUnknownField},
	{ErrFieldType, CodeFieldType},
	{ErrFieldValue, CodeFieldValue},
	{ErrNoTarget, CodeNoTarget},
	{ErrUnresolvedTarget, CodeUnresolved},
	{ErrBadNodeName, CodeBadNodeName},
	{ErrNoMethod, CodeNoMethod},
	{ErrUnknownMethod, CodeUnknownMethod},
	{ErrBadPath, CodeBadPath},
	{ErrTooLarge, CodeTooLarge},
	{ErrReserved, CodeReserved},
}

// CodeOf returns the Code of err, or CodeInternal.
func CodeOf(err error) Code {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// ItemError is the error of one element of a batch.
type ItemError struct {
	// Index is the element's position in the input array (0-based).
	Index int
	Err   error
}

func (e *ItemError) Error() string { return fmt.Sprintf("message %d: %v", e.Index+1, e.Err) }

func (e *ItemError) Unwrap() error { return e.Err }

// FieldError is an error about one field of a message: Field is its name
// as the JSON message format spells it ("methodTimeout", "toNodes"), or a
// dotted path into an object field ("operation.opCmd"). Its text is Err's,
// unchanged, and errors.Is and CodeOf see through it to Err's sentinel.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// FieldOf returns the field err is about (its outermost FieldError's), or
// "" when err names no field of the message.
func FieldOf(err error) string {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

// fieldError returns err as an error about field (nil when err is nil).
func fieldError(field string, err error) error {
	if err == nil {
		return nil
	}
	return &FieldError{Field: field, Err: err}
}

// fieldErrorf is fmt.Errorf of an error about field.
func fieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
