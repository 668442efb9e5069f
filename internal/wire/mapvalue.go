package wire

import (
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// DecodeMapValue is the map decoder of DecodeValue and of decoding into `any`: a map whose
// keys are all strings (or bin) is a map[string]any, as msgpack's default; any other is a
// map[any]any. The default decoded every key as a string, so a Python dict with int keys
// ({0: "setosa"}) failed with "invalid code=1 decoding string/bytes length". A key Go cannot
// hash (a Python tuple arrives as an array) is an error that says so.
//
// Set it with Decoder.SetMapDecoder, and set nil before the decoder goes back to msgpack's
// pool: Reset does not clear it.
func DecodeMapValue(d *msgpack.Decoder) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil || n == -1 {
		return nil, err
	}
	strs := make(map[string]any, n)
	var anys map[any]any // from the first key that is not a string
	for i := range n {
		var key any
		code, err := d.PeekCode()
		if err != nil {
			return nil, err
		}
		if msgpcode.IsString(code) || msgpcode.IsBin(code) {
			key, err = d.DecodeString()
		} else {
			key, err = d.DecodeInterface()
		}
		if err != nil {
			return nil, err
		}
		if key != nil && !reflect.TypeOf(key).Comparable() {
			return nil, fmt.Errorf("msgpack: map key %d is a %T, which cannot be a Go map key (decode into a struct or a typed map instead)", i, key)
		}
		val, err := d.DecodeInterface()
		if err != nil {
			return nil, err
		}
		if s, ok := key.(string); ok && anys == nil {
			strs[s] = val
			continue
		}
		if anys == nil {
			anys = make(map[any]any, n)
			for k, v := range strs {
				anys[k] = v
			}
		}
		anys[key] = val
	}
	if anys != nil {
		return anys, nil
	}
	return strs, nil
}
