package shm

import (
	"errors"
	"os"
	"time"
)

// Supported is false: Windows workers are refused at start anyway; arrays would use the pipe.
const Supported = false

var errUnsupported = errors.New("shm: shared memory segments are not supported on windows")

// ErrClosed and ErrMissing mirror the Unix build.
var (
	ErrClosed  = errors.New("shm: segment closed")
	ErrMissing = errors.New("shm: segment not received")
)

// Segment is never created on Windows.
type Segment struct{}

func Create(int) (*Segment, error)                        { return nil, errUnsupported }
func Open(f *os.File) (*Segment, error)                   { f.Close(); return nil, errUnsupported }
func (*Segment) Bytes() []byte                            { return nil }
func (*Segment) File() *os.File                           { return nil }
func (*Segment) Closed() bool                             { return false }
func (*Segment) CopyOut(int, int, []byte) ([]byte, error) { return nil, errUnsupported }
func (*Segment) Close() error                             { return nil }
func Pair() (host, child *os.File, err error)             { return nil, nil, errUnsupported }

// Channel is never created on Windows.
type Channel struct{}

func NewChannel(f *os.File) (*Channel, error)                    { f.Close(); return nil, errUnsupported }
func (*Channel) Send(uint64, *os.File, time.Duration) error      { return errUnsupported }
func (*Channel) Receive(uint64, time.Duration) (*os.File, error) { return nil, errUnsupported }
func (*Channel) Close() error                                    { return nil }
