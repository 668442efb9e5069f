package mlbridge_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
)

// signatureVectors are spec/vectors/signatures.json, shared with the Python tests: Go and the
// DSPy bridge accept and refuse the same signatures.
type signatureVectors struct {
	Valid []struct {
		In        string `json:"in"`
		Canonical string `json:"canonical"`
	} `json:"valid"`
	Invalid []string `json:"invalid"`
}

func loadSignatureVectors(t *testing.T) signatureVectors {
	raw, err := os.ReadFile(filepath.Join(testenv.Root(), "spec", "vectors", "signatures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v signatureVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) == 0 || len(v.Invalid) == 0 {
		t.Fatal("empty signature vectors")
	}
	return v
}

func TestParseSignature(t *testing.T) {
	for _, c := range loadSignatureVectors(t).Valid {
		sig, err := mlbridge.ParseSignature(c.In)
		if err != nil {
			t.Errorf("%q: %v", c.In, err)
			continue
		}
		if got := sig.String(); got != c.Canonical {
			t.Errorf("%q parsed as %q, want %q", c.In, got, c.Canonical)
		}
		// The canonical form parses to itself.
		again, err := mlbridge.ParseSignature(sig.String())
		if err != nil || again.String() != c.Canonical {
			t.Errorf("%q does not round-trip: %q %v", c.Canonical, again.String(), err)
		}
	}
}

func TestParseSignatureRejects(t *testing.T) {
	for _, in := range loadSignatureVectors(t).Invalid {
		_, err := mlbridge.ParseSignature(in)
		var se *mlbridge.SignatureError
		if !errors.As(err, &se) || !errors.Is(err, mlbridge.ErrInvalidArgument) {
			t.Errorf("%q: got %v, want a *SignatureError matching ErrInvalidArgument", in, err)
			continue
		}
		if se.Offset < 0 || se.Offset > len(in) || se.Msg == "" {
			t.Errorf("%q: error %+v", in, se)
		}
	}
}

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{"question -> answer", "c: list[str], q -> a: Literal['x', 'y'], n: dict[str, Optional[int]]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := mlbridge.ParseSignature(s)
		if err != nil {
			if !errors.Is(err, mlbridge.ErrInvalidArgument) {
				t.Fatalf("%q: untyped error %v", s, err)
			}
			return
		}
		if len(sig.Inputs) == 0 || len(sig.Outputs) == 0 {
			t.Fatalf("%q accepted without inputs or outputs", s)
		}
		again, err := mlbridge.ParseSignature(sig.String())
		if err != nil || again.String() != sig.String() {
			t.Fatalf("%q: canonical form %q does not round-trip: %v", s, sig.String(), err)
		}
	})
}
