package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"time"
)

// floorEcho is the baseline: a bare Python process that echoes length-prefixed frames with
// no runtime, no msgpack and no dispatch (python/mlbridge_worker/floor_echo.py). What the
// real runtime adds is measured against it, on the same machine, in the same run.
type floorEcho struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out io.ReadCloser
}

func startFloor(python string) (*floorEcho, error) {
	cmd := exec.Command(python, "-m", "mlbridge_worker.floor_echo")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start floor echo: %w", err)
	}
	return &floorEcho{cmd: cmd, in: in, out: out}, nil
}

func (f *floorEcho) close() {
	_ = f.in.Close()
	_ = f.cmd.Wait()
}

func (f *floorEcho) readFrame(buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(f.out, hdr[:]); err != nil {
		return buf, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	_, err := io.ReadFull(f.out, buf[:n])
	return buf, err
}

// sequential measures round trips one at a time until d has passed.
func (f *floorEcho) sequential(frame []byte, d time.Duration) (latencies, error) {
	var lat latencies
	var buf []byte
	var err error
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		t0 := time.Now()
		if _, err = f.in.Write(frame); err != nil {
			return lat, err
		}
		if buf, err = f.readFrame(buf); err != nil {
			return lat, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// pipelined keeps `window` frames outstanding for d and returns the echo rate.
func (f *floorEcho) pipelined(frame []byte, window int, d time.Duration) (float64, error) {
	tokens := make(chan struct{}, window) // one per frame in flight
	var sent atomic.Int64
	var stop atomic.Bool
	writerDone := make(chan error, 1)
	go func() {
		for !stop.Load() {
			tokens <- struct{}{}
			if _, err := f.in.Write(frame); err != nil {
				writerDone <- err
				return
			}
			sent.Add(1)
		}
		writerDone <- nil
	}()
	var buf []byte
	var err error
	received := int64(0)
	start := time.Now()
	for time.Since(start) < d {
		if buf, err = f.readFrame(buf); err != nil {
			return 0, err
		}
		received++
		<-tokens
	}
	rate := float64(received) / time.Since(start).Seconds()
	stop.Store(true)
	// Read what is still in flight, so the process is idle for the next phase.
	for {
		select {
		case werr := <-writerDone:
			for received < sent.Load() {
				if buf, err = f.readFrame(buf); err != nil {
					return 0, err
				}
				received++
			}
			return rate, werr
		default:
		}
		if received < sent.Load() {
			if buf, err = f.readFrame(buf); err != nil {
				return 0, err
			}
			received++
			<-tokens
		} else {
			runtime.Gosched()
		}
	}
}
