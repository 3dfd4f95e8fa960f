package message

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decode parses operator input: a JSON array of messages, or one message
// object. Each element is decoded strictly (unknown fields and wrong types
// are errors) and on its own: msgs holds the elements that decoded, in
// order, and itemErrs one error per element that did not. err is set only
// when the input as a whole cannot be read; then nothing decoded.
//
// Decode does not validate; call Validate on each message.
func Decode(input []byte) (msgs []*Message, indexes []int, itemErrs []*ItemError, err error) {
	trimmed := bytes.TrimSpace(input)
	if len(trimmed) == 0 {
		return nil, nil, nil, fmt.Errorf("empty input: %w", ErrMalformed)
	}
	var raws []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", describeJSONError(err, trimmed), ErrMalformed)
		}
		if len(raws) == 0 {
			return nil, nil, nil, fmt.Errorf("the array holds no messages: %w", ErrMalformed)
		}
	case '{':
		raws = []json.RawMessage{trimmed}
	default:
		return nil, nil, nil, fmt.Errorf("input must be a JSON array of messages or one message object: %w", ErrMalformed)
	}
	for i, raw := range raws {
		m, err := DecodeOne(raw)
		if err != nil {
			itemErrs = append(itemErrs, &ItemError{Index: i, Err: err})
			continue
		}
		msgs = append(msgs, m)
		indexes = append(indexes, i)
	}
	return msgs, indexes, itemErrs, nil
}

// DecodeOne strictly decodes one message object.
func DecodeOne(raw []byte) (*Message, error) {
	if err := validUTF8(raw); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("each message must be a JSON object: %w", ErrMalformed)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return nil, classifyJSONError(err, trimmed)
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after the message object: %w", ErrMalformed)
	}
	return &m, nil
}

// DecodeWire decodes a message as it comes from the broker. Unlike
// DecodeOne it ignores fields it does not know, so a node keeps working
// with messages from a newer steward; wrong types are still errors.
func DecodeWire(raw []byte) (*Message, error) {
	if err := validUTF8(raw); err != nil {
		return nil, err
	}
	var m Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, classifyJSONError(err, raw)
	}
	return &m, nil
}

// classifyJSONError turns an encoding/json error into one that says which
// field is wrong and how, wrapping the matching sentinel.
func classifyJSONError(err error, input []byte) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "message"
		}
		err := fmt.Errorf("field %q: expected %s, got %s: %w", field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value, ErrFieldType)
		if typeErr.Field == "" { // the message itself, no field of it
			return err
		}
		return fieldError(typeErr.Field, err)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%s: %w", describeJSONError(err, input), ErrMalformed)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return fieldErrorf(unknownFieldPath(input, name), "field %s is not part of the message format: %w", name, ErrUnknownField)
	case errors.Is(err, ErrFieldType), errors.Is(err, ErrFieldValue):
		return err
	default:
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	}
}

// unknownFieldPath is the field an unknown-field error of encoding/json
// is about; quoted is the key as the error quotes it. The error does not
// say where the key is: it is the key itself when the message object has
// it, else "<field>.<key>" for the object field that holds it (as in
// "operation": {"opCmnd": …}).
func unknownFieldPath(input []byte, quoted string) string {
	name, err := strconv.Unquote(quoted)
	if err != nil {
		return quoted
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(input, &top) != nil {
		return name
	}
	if _, ok := top[name]; ok {
		return name
	}
	for _, field := range slices.Sorted(maps.Keys(top)) {
		var inner map[string]json.RawMessage
		if json.Unmarshal(top[field], &inner) != nil {
			continue
		}
		if _, ok := inner[name]; ok {
			return field + "." + name
		}
	}
	return name
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "bool":
		return "true or false"
	case "struct", "map", "ptr":
		return "an object"
	default:
		return goKind
	}
}

// describeJSONError renders a syntax error with line and column.
func describeJSONError(err error, input []byte) string {
	var syntaxErr *json.SyntaxError
	if !errors.As(err, &syntaxErr) {
		return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
	}
	// Offset counts the bytes read up to and including the offending one.
	off := min(int(syntaxErr.Offset), len(input))
	if comma, ok := trailingComma(input, off); ok {
		line, col := position(input, comma)
		return fmt.Sprintf("invalid JSON at line %d, column %d: trailing comma: JSON does not allow a comma before } or ]", line, col)
	}
	at := off
	if off > 0 && strings.HasPrefix(syntaxErr.Error(), "invalid character") {
		at = off - 1 // the offending character itself
	}
	line, col := position(input, at)
	return fmt.Sprintf("invalid JSON at line %d, column %d: %s", line, col, syntaxErr.Error())
}

// trailingComma reports whether the syntax error at off (the offending
// byte is input[off-1]) is a '}' or ']' right after a comma, as in
// {"a":1,}, and the index of that comma. The scanner stops only at a '}'
// or ']' outside a string, so the comma before it is JSON's own.
func trailingComma(input []byte, off int) (int, bool) {
	if off < 1 || (input[off-1] != '}' && input[off-1] != ']') {
		return 0, false
	}
	before := bytes.TrimRight(input[:off-1], " \t\r\n")
	if len(before) == 0 || before[len(before)-1] != ',' {
		return 0, false
	}
	return len(before) - 1, true
}

// position is the line and column, both counted from 1, of input[i]
// (of the end of input when i is len(input)).
func position(input []byte, i int) (line, col int) {
	line = 1 + bytes.Count(input[:i], []byte("\n"))
	col = i - bytes.LastIndexByte(input[:i], '\n')
	return line, col
}

// validUTF8 refuses input that is not UTF-8: encoding/json would replace
// the bad bytes and run a command or write a file other than the one sent.
func validUTF8(raw []byte) error {
	if utf8.Valid(raw) {
		return nil
	}
	at := 0
	for at < len(raw) {
		r, n := utf8.DecodeRune(raw[at:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		at += n
	}
	return fmt.Errorf("input is not valid UTF-8 (byte %d): %w", at, ErrMalformed)
}
