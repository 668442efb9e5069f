package wire

import (
	"encoding/hex"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the frame splitter and the message decoder. Neither
// may panic, hang or allocate past the frame limit, and every failure must be a
// *ProtocolError. The seed corpus is the shared vectors. Long run: make fuzz.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		b, err := hex.DecodeString(v.Hex)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		payload, err := SplitFrame(data, 1<<16)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("SplitFrame error %T %v", err, err)
			}
			return
		}
		for _, dir := range []Direction{HostToWorker, WorkerToHost} {
			m, err := DecodeMessage(payload, dir)
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("DecodeMessage error %T %v", err, err)
				}
				continue
			}
			if m.Type == "" {
				t.Fatal("accepted a message without a type")
			}
		}
	})
}
