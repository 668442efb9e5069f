package mlbridge_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// stubFraming is the frame reading and writing of the Python stand-in workers below (and in
// limits_test.go): read() decodes the next frame from stdin, write(raw) sends one.
const stubFraming = `
import os, struct, msgpack
def read():
    n = struct.unpack(">I", os.read(0, 4))[0]
    buf = b""
    while len(buf) < n:
        buf += os.read(0, n - len(buf))
    return msgpack.unpackb(buf)
def write(raw):
    os.write(1, struct.pack(">I", len(raw)) + raw)
`

// badWorker is a Python stand-in for a broken worker: a correct handshake, then, for each
// request, the reply named by argv[1]. It tests how the host treats a peer that breaks
// spec/protocol.md after it started well.
const badWorker = stubFraming + `
import sys
read()  # the host hello
write(msgpack.packb({"t": "hello", "version": 1, "pid": os.getpid(),
    "framework": {"name": "bad", "version": "0"}, "capabilities": [], "handlers": {"x": "async"}}))
mode = sys.argv[1]
while True:
    m = read()
    if m.get("t") != "req":
        continue
    if mode == "garbage":
        write(b"\xc1\xc1\xc1")  # not msgpack: the stream cannot be trusted any more
    elif mode == "schema":
        if m["op"] == "x":
            write(msgpack.packb({"t": "res", "id": m["id"]}))  # no "ok": this call fails, the stream is fine
        else:
            write(msgpack.packb({"t": "res", "id": m["id"], "ok": True, "result": "fine"}))
`

func openBad(t *testing.T, mode string) *mlbridge.Bridge {
	return open(t, func(c *mlbridge.Config) {
		c.Args = []string{"-c", badWorker, mode}
		c.Python = testenv.Python(t)
	})
}

func TestMalformedFrameFromWorker(t *testing.T) {
	b := openBad(t, "garbage")
	_, err := b.Call(context.Background(), "x", nil)
	var exit *mlbridge.ExitError
	if !errors.As(err, &exit) || !strings.Contains(exit.Reason, "protocol error") {
		t.Fatalf("got %v, want an ExitError saying protocol error", err)
	}
	<-b.Done()
	if _, err := b.Call(context.Background(), "x", nil); !errors.Is(err, mlbridge.ErrWorkerExited) {
		t.Fatalf("after the protocol error: %v", err)
	}
}

func TestSchemaErrorFromWorkerFailsOnlyThatCall(t *testing.T) {
	b := openBad(t, "schema")
	if _, err := b.Call(context.Background(), "x", nil); !errors.Is(err, mlbridge.ErrProtocol) {
		t.Fatalf("res without ok: %v", err)
	}
	if v := call[string](t, b, "y", nil); v != "fine" {
		t.Fatalf("next call on the same worker: %q", v)
	}
}
