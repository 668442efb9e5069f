package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxDepth is the deepest nesting of arrays and maps a value may have on the wire
// (spec/protocol.md, "Limits"): a scalar is depth 0, an array or map one more than its
// deepest element (an empty one is 1). It bounds args, result, data and every other field
// of a message, not counting the envelope map itself. The Python worker uses the same
// number; it is far below what either side's msgpack library can decode (msgpack-python
// stops at 1,024 levels, for the whole payload).
const MaxDepth = 256

// ErrTooDeep refuses a value nested deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("value nests more than %d arrays/maps deep (the protocol's limit)", MaxDepth)

// ErrFrameTooLarge refuses a frame that would pass the max frame size.
var ErrFrameTooLarge = errors.New("frame exceeds the max frame size")

var (
	errShortValue  = errors.New("payload ends inside a value")
	errInvalidCode = errors.New("invalid msgpack code 0xc1")
)

// headLens[c] is the length of the header that starts with byte c: the type byte plus any
// length or fixed-size value bytes (so an int64 is all header, a str header is followed by
// its body). 0 marks 0xc1, which msgpack never uses.
var headLens = func() (t [256]uint8) {
	for c := range 256 {
		n := uint8(1)
		switch {
		case c == 0xc1:
			n = 0
		case c == 0xc4, c == 0xd9, c == 0xcc, c == 0xd0, c >= 0xd4 && c <= 0xd8:
			n = 2 // bin8, str8, uint8, int8, fixext (its type byte)
		case c == 0xc5, c == 0xda, c == 0xcd, c == 0xd1, c == 0xdc, c == 0xde, c == 0xc7:
			n = 3 // 16-bit lengths and values, ext8 (length + type)
		case c == 0xc8:
			n = 4 // ext16
		case c == 0xc6, c == 0xdb, c == 0xca, c == 0xce, c == 0xd2, c == 0xdd, c == 0xdf:
			n = 5 // 32-bit lengths and values
		case c == 0xc9:
			n = 6 // ext32
		case c == 0xcb, c == 0xcf, c == 0xd3:
			n = 9 // 64-bit values
		}
		t[c] = n
	}
	return t
}()

// token describes one value's header h (len(h) == headLens[h[0]]): how many body bytes
// follow it, how many values it contains (a map's keys and values both count), and whether
// it is an array or a map (which adds a level even when empty).
func token(h []byte) (body, children uint64, container bool) {
	c := h[0]
	switch {
	case c <= 0x7f, c >= 0xe0:
		return 0, 0, false
	case c <= 0x8f:
		return 0, 2 * uint64(c&0x0f), true
	case c <= 0x9f:
		return 0, uint64(c & 0x0f), true
	case c <= 0xbf:
		return uint64(c & 0x1f), 0, false
	}
	switch c {
	case 0xc4, 0xd9:
		return uint64(h[1]), 0, false
	case 0xc5, 0xda:
		return uint64(binary.BigEndian.Uint16(h[1:])), 0, false
	case 0xc6, 0xdb:
		return uint64(binary.BigEndian.Uint32(h[1:])), 0, false
	case 0xc7:
		return uint64(h[1]), 0, false
	case 0xc8:
		return uint64(binary.BigEndian.Uint16(h[1:])), 0, false
	case 0xc9:
		return uint64(binary.BigEndian.Uint32(h[1:])), 0, false
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return 1 << (c - 0xd4), 0, false
	case 0xdc:
		return 0, uint64(binary.BigEndian.Uint16(h[1:])), true
	case 0xdd:
		return 0, uint64(binary.BigEndian.Uint32(h[1:])), true
	case 0xde:
		return 0, 2 * uint64(binary.BigEndian.Uint16(h[1:])), true
	case 0xdf:
		return 0, 2 * uint64(binary.BigEndian.Uint32(h[1:])), true
	}
	return 0, 0, false // nil, bool, fixed-size numbers: all header
}

// next splits the first value's header off b.
func next(b []byte) (h, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, errShortValue
	}
	n := int(headLens[b[0]])
	if n == 0 {
		return nil, nil, errInvalidCode
	}
	if len(b) < n {
		return nil, nil, errShortValue
	}
	return b[:n], b[n:], nil
}

// CheckValue refuses b unless it is exactly one msgpack value within MaxDepth: raw bytes from
// a peer (a host function's result served over NATS) before they are written into a frame.
func CheckValue(b []byte) error {
	rest, deep, err := skipValue(b, MaxDepth)
	switch {
	case err != nil:
		return err
	case deep:
		return ErrTooDeep
	case len(rest) != 0:
		return fmt.Errorf("%d bytes after the value", len(rest))
	}
	return nil
}

// skipValue returns b after its first value. deep reports a value nested more than
// maxDepth levels; it is still skipped whole (without tracking its depth any further), so
// that a message holding one stays readable past it. The recursion is bounded by maxDepth.
func skipValue(b []byte, maxDepth int) (rest []byte, deep bool, err error) {
	return skipLevel(b, 0, maxDepth)
}

// skipLevel skips a value that depth containers enclose.
func skipLevel(b []byte, depth, maxDepth int) ([]byte, bool, error) {
	h, rest, err := next(b)
	if err != nil {
		return nil, false, err
	}
	body, n, container := token(h)
	if !container {
		if uint64(len(rest)) < body {
			return nil, false, errShortValue
		}
		return rest[body:], false, nil
	}
	if depth >= maxDepth {
		rest, err := skipCount(b, 1)
		return rest, true, err
	}
	for i := uint64(0); i < n; i++ {
		var deep bool
		if rest, deep, err = skipLevel(rest, depth+1, maxDepth); err != nil {
			return nil, false, err
		}
		if deep {
			rest, err = skipCount(rest, n-i-1)
			return rest, true, err
		}
	}
	return rest, false, nil
}

// skipCount skips n values without recursion or depth tracking: a single counter of the
// values still to pass, whatever their nesting. Every value consumes at least one byte, so
// a header that claims more elements than the payload holds fails at its end.
func skipCount(b []byte, n uint64) ([]byte, error) {
	for n > 0 {
		h, rest, err := next(b)
		if err != nil {
			return nil, err
		}
		body, children, _ := token(h)
		if uint64(len(rest)) < body {
			return nil, errShortValue
		}
		b = rest[body:]
		n = n - 1 + children
	}
	return b, nil
}

// scanner follows a msgpack value written in pieces (the encoder's writes), to refuse it
// at the first container past MaxDepth, before the rest is encoded: a value nested too deep
// (or cyclic, which would recurse until the stack overflows) costs a few hundred levels of
// work. It also tells whether the value is complete, and refuses args that are not a map
// at their first byte.
type scanner struct {
	open  [MaxDepth]uint64 // values still to come in each open container, outermost first
	depth int              // containers open
	body  uint64           // body bytes of the current value still to pass
	part  [9]byte          // a header split across writes
	partN int
	first byte // the value's first byte (0xc1, never valid, until it is known)
	done  bool // the value's last header was read (its body may still be pending)
	// mapOnly refuses a value that is not a map or nil (request args) at its first byte.
	mapOnly bool
}

func (s *scanner) reset() {
	s.depth, s.body, s.partN, s.first, s.done, s.mapOnly = 0, 0, 0, 0xc1, false, false
}

// complete reports whether exactly one whole value was fed.
func (s *scanner) complete() bool { return s.done && s.body == 0 && s.partN == 0 }

// feed follows p, the next bytes of the value. A nil scanner takes anything (the frame's
// bytes outside args).
func (s *scanner) feed(p []byte) error {
	if s == nil {
		return nil
	}
	for len(p) > 0 {
		if s.body > 0 {
			k := min(s.body, uint64(len(p)))
			s.body -= k
			p = p[k:]
			continue
		}
		if s.done {
			return errors.New("bytes after the value")
		}
		var h []byte
		if s.partN == 0 && len(p) >= int(headLens[p[0]]) {
			var err error
			if h, p, err = next(p); err != nil {
				return err
			}
		} else {
			need := int(headLens[s.headByte(p)])
			k := copy(s.part[s.partN:need], p)
			s.partN += k
			p = p[k:]
			if s.partN < need {
				return nil // the rest of the header comes with the next write
			}
			h = s.part[:need]
			s.partN = 0
		}
		if err := s.value(h); err != nil {
			return err
		}
	}
	return nil
}

func (s *scanner) headByte(p []byte) byte {
	if s.partN > 0 {
		return s.part[0]
	}
	return p[0]
}

// value accounts for one value whose header is h.
func (s *scanner) value(h []byte) error {
	if s.first == 0xc1 {
		s.first = h[0]
		if s.mapOnly && !isMapOrNil(h) {
			return ErrArgsNotMap
		}
	}
	body, children, container := token(h)
	if s.depth > 0 {
		s.open[s.depth-1]-- // this value fills one place of its container
	}
	if container {
		if s.depth >= MaxDepth {
			return ErrTooDeep
		}
		if children > 0 {
			s.open[s.depth] = children
			s.depth++
		}
	}
	s.body = body
	for s.depth > 0 && s.open[s.depth-1] == 0 {
		s.depth--
	}
	s.done = s.depth == 0
	return nil
}
