package wire

import "testing"

// BenchmarkDecodeRes is the envelope decode of the most common frame, a unary result.
func BenchmarkDecodeRes(b *testing.B) {
	enc := NewEncoder()
	payload, err := enc.Value(map[string]any{"t": "res", "id": 12345, "ok": true, "result": map[string]any{"answer": "forty-two"}})
	if err != nil {
		b.Fatal(err)
	}
	payload = append([]byte(nil), payload...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(payload, WorkerToHost); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeReq is the request encode on the hot path.
func BenchmarkEncodeReq(b *testing.B) {
	args := map[string]any{"question": "what is the answer?"}
	b.ReportAllocs()
	for b.Loop() {
		enc := GetEncoder()
		if _, err := enc.Req(12345, "execute", args, 0, false); err != nil {
			b.Fatal(err)
		}
		PutEncoder(enc)
	}
}
