package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// DefaultMaxFrame is the default largest payload either side accepts: 64 MiB.
const DefaultMaxFrame = 64 << 20

// headerLen is the size of the length prefix.
const headerLen = 4

// FrameReader reads length-prefixed frames from a stream.
type FrameReader struct {
	r   *bufio.Reader
	max int
}

// NewFrameReader reads frames of at most max payload bytes (DefaultMaxFrame if max <= 0).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// ReadFrame returns the next payload in a freshly allocated slice that the caller owns.
// io.EOF means the stream ended cleanly between frames; a stream that ends inside a frame
// is a Truncated ProtocolError.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, protoErr(Truncated, "stream ended inside a length prefix")
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, protoErr(EmptyFrame, "zero-length frame")
	}
	if uint64(n) > uint64(fr.max) {
		return nil, protoErr(FrameTooLarge, "frame of %d bytes exceeds the %d-byte limit", n, fr.max)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, protoErr(Truncated, "stream ended inside a %d-byte frame", n)
		}
		return nil, err
	}
	return payload, nil
}

// SplitFrame parses one whole frame held in b (prefix included) and returns its payload.
// It applies the same rules as ReadFrame and is used by tests and vectors.
func SplitFrame(b []byte, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	if len(b) < headerLen {
		return nil, protoErr(Truncated, "%d bytes is shorter than a length prefix", len(b))
	}
	n := binary.BigEndian.Uint32(b)
	switch {
	case n == 0:
		return nil, protoErr(EmptyFrame, "zero-length frame")
	case uint64(n) > uint64(max):
		return nil, protoErr(FrameTooLarge, "frame of %d bytes exceeds the %d-byte limit", n, max)
	case uint64(len(b)-headerLen) < uint64(n):
		return nil, protoErr(Truncated, "have %d of %d payload bytes", len(b)-headerLen, n)
	case uint64(len(b)-headerLen) > uint64(n):
		return nil, protoErr(TrailingBytes, "%d bytes after the frame", uint64(len(b)-headerLen)-uint64(n))
	}
	return b[headerLen:], nil
}

// putHeader writes the length prefix for a frame whose payload starts at buf[headerLen:].
func putHeader(buf []byte) {
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-headerLen))
}
