//go:build unix

package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Channel carries segment descriptors to and from one worker: each message is the segment's
// 8-byte id (big-endian) with its descriptor attached (SCM_RIGHTS). Send and Receive are each
// safe for concurrent use.
type Channel struct {
	conn *net.UnixConn
	smu  sync.Mutex
	rmu  sync.Mutex
	// stash holds descriptors read while looking for another id (the peer may send the
	// segments of two frames before either frame).
	stash  map[uint64]*os.File
	closed bool
}

const idLen = 8

// NewChannel wraps the host's end of a Pair; f is consumed.
func NewChannel(f *os.File) (*Channel, error) {
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("shm: channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("shm: channel is a %T, not a Unix socket", c)
	}
	return &Channel{conn: uc, stash: map[uint64]*os.File{}}, nil
}

// Send passes f's descriptor to the peer under id, waiting at most timeout for room in the
// socket. The caller keeps f (and may close it at once: the message holds its own reference).
func (c *Channel) Send(id uint64, f *os.File, timeout time.Duration) error {
	var msg [idLen]byte
	binary.BigEndian.PutUint64(msg[:], id)
	c.smu.Lock()
	defer c.smu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, _, err := c.conn.WriteMsgUnix(msg[:], syscall.UnixRights(int(f.Fd())), nil)
	if err != nil {
		return fmt.Errorf("shm: send segment %d: %w", id, err)
	}
	return nil
}

// ErrMissing is returned when the peer's segment did not arrive in time.
var ErrMissing = errors.New("shm: segment not received")

// Receive returns the descriptor the peer sent under id, reading (and stashing) others until it
// arrives. The peer sends a segment before the frame naming it, so it is normally queued
// already; timeout bounds a peer that breaks that rule.
func (c *Channel) Receive(id uint64, timeout time.Duration) (*os.File, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if f, ok := c.stash[id]; ok {
		delete(c.stash, id)
		return f, nil
	}
	if c.closed {
		return nil, fmt.Errorf("%w: %d (channel closed)", ErrMissing, id)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		got, f, err := c.readOne()
		if err != nil {
			return nil, fmt.Errorf("%w: %d: %w", ErrMissing, id, err)
		}
		if got == id {
			return f, nil
		}
		if old := c.stash[got]; old != nil {
			old.Close()
		}
		c.stash[got] = f
	}
}

func (c *Channel) readOne() (uint64, *os.File, error) {
	var msg [idLen]byte
	oob := make([]byte, syscall.CmsgSpace(4*4)) // room for a few: extras are closed
	n, oobn, _, _, err := c.conn.ReadMsgUnix(msg[:], oob)
	if err != nil {
		return 0, nil, err
	}
	files, perr := parseRights(oob[:oobn])
	for n < idLen && perr == nil { // a short read of a stream socket: the rest has no descriptor
		var m int
		m, err = c.conn.Read(msg[n:])
		if err != nil {
			perr = err
		}
		n += m
	}
	if perr == nil && len(files) != 1 {
		perr = fmt.Errorf("a segment message with %d descriptors", len(files))
	}
	if perr != nil {
		for _, f := range files {
			f.Close()
		}
		return 0, nil, perr
	}
	return binary.BigEndian.Uint64(msg[:]), files[0], nil
}

func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd) // Linux's Go receives them close-on-exec; elsewhere, now
			files = append(files, os.NewFile(uintptr(fd), "mlbridge-array"))
		}
	}
	return files, nil
}

// Close closes the socket and every stashed descriptor; descriptors still queued in the socket
// are freed by the kernel with it.
func (c *Channel) Close() error {
	err := c.conn.Close()
	c.rmu.Lock()
	c.closed = true
	for id, f := range c.stash {
		f.Close()
		delete(c.stash, id)
	}
	c.rmu.Unlock()
	return err
}
