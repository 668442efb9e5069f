package wire

import "github.com/vmihailenco/msgpack/v5"

// HelloFuncs is Hello announcing the host functions a worker may call: funcs is a msgpack
// map {name: {description, schema}} (nil or empty: none, and the frame is what Hello builds).
func (e *Encoder) HelloFuncs(versions []uint64, maxFrame uint64, funcs msgpack.RawMessage) []byte {
	if len(funcs) == 0 {
		return e.Hello(versions, maxFrame)
	}
	e.begin(4, TypeHello, maxInt)
	_ = e.enc.EncodeString("versions")
	_ = e.enc.EncodeArrayLen(len(versions))
	for _, v := range versions {
		_ = e.enc.EncodeUint(v)
	}
	e.uintField("max_frame", maxFrame)
	_ = e.enc.EncodeString("host_funcs")
	_, _ = e.buf.Write(funcs)
	return e.finish()
}

// HRes answers host call id with its result. A result too large for the worker's max frame
// (see SetMaxFrame) fails with ErrFrameTooLarge; the caller then answers with an error.
func (e *Encoder) HRes(id uint64, result any) ([]byte, error) {
	max := e.maxFrame
	if max <= 0 {
		max = DefaultMaxFrame
	}
	e.begin(4, TypeHRes, headerLen+max)
	e.uintField("id", id)
	_ = e.enc.EncodeString("ok")
	_ = e.enc.EncodeBool(true)
	_ = e.enc.EncodeString("result")
	var err error
	if raw, ok := result.(msgpack.RawMessage); ok {
		_, err = e.buf.Write(raw)
	} else {
		err = e.encodeUser(result)
	}
	if err == nil {
		err = e.buf.err
	}
	if err != nil {
		return nil, err
	}
	return e.finish(), nil
}

// HResError answers host call id with an error.
func (e *Encoder) HResError(id uint64, info ErrorInfo) []byte {
	fields := 3
	if info.Traceback != "" {
		fields = 4
	}
	e.begin(4, TypeHRes, maxInt)
	e.uintField("id", id)
	_ = e.enc.EncodeString("ok")
	_ = e.enc.EncodeBool(false)
	_ = e.enc.EncodeString("error")
	_ = e.enc.EncodeMapLen(fields)
	kvs := [...][2]string{{"category", info.Category}, {"type", info.Type}, {"message", info.Message}, {"traceback", info.Traceback}}
	for _, kv := range kvs[:fields] {
		_ = e.enc.EncodeString(kv[0])
		_ = e.enc.EncodeString(kv[1])
	}
	return e.finish()
}
