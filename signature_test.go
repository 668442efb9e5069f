package mlbridge_test

import (
	"errors"
	"testing"

	"github.com/mlbridge/mlbridge"
)

func TestParseSignature(t *testing.T) {
	cases := map[string]string{
		"question -> answer": "question: str -> answer: str",
		"context: list[str], question: str -> answer: str, confidence: float": "context: list[str], question: str -> answer: str, confidence: float",
		"q:str->a:int":                           "q: str -> a: int",
		"doc: dict[str,  list[int]] -> ok: bool": "doc: dict[str, list[int]] -> ok: bool",
		"text -> label: Literal['pos', 'neg, or not'], score: Optional[float]": "text: str -> label: Literal['pos', 'neg, or not'], score: Optional[float]",
		"x: List[str] -> y": "x: list[str] -> y: str",
	}
	for in, want := range cases {
		sig, err := mlbridge.ParseSignature(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := sig.String(); got != want {
			t.Errorf("%q parsed as %q, want %q", in, got, want)
		}
		// The canonical form parses to itself.
		again, err := mlbridge.ParseSignature(sig.String())
		if err != nil || again.String() != want {
			t.Errorf("%q does not round-trip: %q %v", want, again.String(), err)
		}
	}
}

func TestParseSignatureRejects(t *testing.T) {
	bad := []string{
		"", "question", "question answer", "-> answer", "question ->", "a -> b -> c",
		"a, -> b", "a -> b,", "1a -> b", "a b -> c", "class -> b", "a -> a",
		"a: list[str -> b", "a: list[str]] -> b", "a: tensor -> b", "a: list[str, int] -> b",
		"a: dict[int, str] -> b", "a: Literal[] -> b", "a: Literal[pos] -> b", "a: -> b",
	}
	for _, in := range bad {
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
