package socket

import "encoding/binary"

// scanner finds where JSON values end in a stream and checks their syntax
// as the bytes arrive, so that a value's end or its first bad byte is known
// without holding more than the value. Values are split as encoding/json's
// Decoder splits them: a top-level number ends at the first byte that cannot
// continue it, or at the end of the input.
type scanner struct {
	state  state
	stack  []byte // the open containers, '[' or '{'
	key    bool   // the string being read is an object key
	lit    string // the rest of the literal being read
	hex    int    // hex digits still due in a \u escape
	number bool   // a top-level number is being read
}

type state uint8

const (
	stTop         state = iota // before a top-level value
	stValue                    // before a value inside a container
	stArrayFirst               // after '[': a value or ']'
	stObjectFirst              // after '{': a key or '}'
	stKey                      // after ',' in an object: a key
	stColon                    // after a key
	stNext                     // after a value in a container: ',' or its end
	stString                   // inside a string
	stEscape                   // after '\' in a string
	stHex                      // in the digits of a \u escape
	stLiteral                  // inside true, false or null
	stMinus                    // after a leading '-'
	stZero                     // after a leading 0
	stInt                      // in the integer digits
	stDot                      // after '.'
	stFraction                 // in the fraction digits
	stExp                      // after 'e' or 'E'
	stExpSign                  // after the exponent's sign
	stExpDigits                // in the exponent digits
)

// event is what scan stopped at.
type event uint8

const (
	more  event = iota // every byte was taken; the value goes on
	ended              // the value ended before p[n]
	bad                // p[n] cannot come next
)

// maxDepth is how deeply containers may nest, as in encoding/json.
const maxDepth = 10000

// reset prepares s for the next value.
func (s *scanner) reset() {
	s.state, s.stack, s.key, s.number = stTop, s.stack[:0], false, false
}

// scan takes the bytes of p until the value ends or a byte is bad. The
// first byte given for a value must be its first byte, not white space.
func (s *scanner) scan(p []byte) (n int, ev event) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch s.state {
		case stTop, stValue, stArrayFirst:
			if isSpace(c) {
				continue
			}
			if c == ']' && s.state == stArrayFirst {
				if s.pop() {
					return i + 1, ended
				}
				continue
			}
			if !s.begin(c) {
				return i, bad
			}
		case stObjectFirst, stKey:
			switch {
			case isSpace(c):
			case c == '"':
				s.state, s.key = stString, true
			case c == '}' && s.state == stObjectFirst:
				if s.pop() {
					return i + 1, ended
				}
			default:
				return i, bad
			}
		case stColon:
			switch {
			case isSpace(c):
			case c == ':':
				s.state = stValue
			default:
				return i, bad
			}
		case stNext:
			switch {
			case isSpace(c):
			case c == ',':
				if s.stack[len(s.stack)-1] == '{' {
					s.state = stKey
				} else {
					s.state = stValue
				}
			case c == ']' || c == '}':
				if s.stack[len(s.stack)-1] != open(c) {
					return i, bad
				}
				if s.pop() {
					return i + 1, ended
				}
			default:
				return i, bad
			}
		case stString:
			// Most bytes of a large input are in strings: skip plain ones fast.
			i += plainRun(p[i:])
			if i == len(p) {
				return i, more
			}
			switch p[i] {
			case '"':
				if s.key {
					s.key, s.state = false, stColon
				} else if s.done() {
					return i + 1, ended
				}
			case '\\':
				s.state = stEscape
			default:
				return i, bad
			}
		case stEscape:
			switch c {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.state = stString
			case 'u':
				s.state, s.hex = stHex, 4
			default:
				return i, bad
			}
		case stHex:
			if !isHex(c) {
				return i, bad
			}
			if s.hex--; s.hex == 0 {
				s.state = stString
			}
		case stLiteral:
			if c != s.lit[0] {
				return i, bad
			}
			if s.lit = s.lit[1:]; s.lit == "" && s.done() {
				return i + 1, ended
			}
		case stMinus:
			switch {
			case c == '0':
				s.state = stZero
			case isDigit(c):
				s.state = stInt
			default:
				return i, bad
			}
		case stZero, stInt:
			switch {
			case isDigit(c) && s.state == stInt:
			case c == '.':
				s.state = stDot
			case c == 'e' || c == 'E':
				s.state = stExp
			default:
				if s.endNumber() {
					return i, ended
				}
				i-- // c comes after the number
			}
		case stDot:
			if !isDigit(c) {
				return i, bad
			}
			s.state = stFraction
		case stFraction:
			switch {
			case isDigit(c):
			case c == 'e' || c == 'E':
				s.state = stExp
			default:
				if s.endNumber() {
					return i, ended
				}
				i--
			}
		case stExp:
			switch {
			case c == '+' || c == '-':
				s.state = stExpSign
			case isDigit(c):
				s.state = stExpDigits
			default:
				return i, bad
			}
		case stExpSign:
			if !isDigit(c) {
				return i, bad
			}
			s.state = stExpDigits
		case stExpDigits:
			if !isDigit(c) {
				if s.endNumber() {
					return i, ended
				}
				i--
			}
		}
	}
	return len(p), more
}

// begin starts the value whose first byte is c; false if none starts so.
func (s *scanner) begin(c byte) bool {
	top := s.state == stTop
	switch {
	case c == '{' || c == '[':
		if len(s.stack) == maxDepth {
			return false
		}
		s.stack = append(s.stack, c)
		s.state = stObjectFirst
		if c == '[' {
			s.state = stArrayFirst
		}
	case c == '"':
		s.state = stString
	case c == 't':
		s.state, s.lit = stLiteral, "rue"
	case c == 'f':
		s.state, s.lit = stLiteral, "alse"
	case c == 'n':
		s.state, s.lit = stLiteral, "ull"
	case c == '-':
		s.state, s.number = stMinus, top
	case c == '0':
		s.state, s.number = stZero, top
	case isDigit(c):
		s.state, s.number = stInt, top
	default:
		return false
	}
	return true
}

// done ends a scalar value; true if it was the top-level value.
func (s *scanner) done() bool {
	if len(s.stack) == 0 {
		s.state = stTop
		return true
	}
	s.state = stNext
	return false
}

// endNumber ends a number; true if it was the top-level value.
func (s *scanner) endNumber() bool {
	s.number = false
	return s.done()
}

// pop closes the innermost container; true if it was the top-level value.
func (s *scanner) pop() bool {
	s.stack = s.stack[:len(s.stack)-1]
	return s.done()
}

// end reports whether the input ending here completes the value being read
// (only a top-level number can end so).
func (s *scanner) end() bool {
	switch s.state {
	case stZero, stInt, stFraction, stExpDigits:
		return s.number
	}
	return false
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainRun counts the bytes at the start of p that may stand as they are in
// a string: not '"', not '\\', not a control character. It tests eight
// bytes at a time: (v-ones)&^v&highs is not 0 exactly when some byte of v is
// 0, and (x-ones*n)&^x&highs exactly when some byte of x is below n ≤ 128.
func plainRun(p []byte) int {
	i := 0
	for ; i+8 <= len(p); i += 8 {
		x := binary.LittleEndian.Uint64(p[i:])
		q, b := x^(ones*'"'), x^(ones*'\\')
		if ((x-ones*0x20)&^x|(q-ones)&^q|(b-ones)&^b)&highs != 0 {
			break
		}
	}
	for i < len(p) && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\' {
		i++
	}
	return i
}

func open(closer byte) byte {
	if closer == ']' {
		return '['
	}
	return '{'
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
