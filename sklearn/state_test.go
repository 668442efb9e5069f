package sklearn_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/sklearn"
	"github.com/mlbridge/mlbridge/store"
)

// pickleStr is a pickle BINUNICODE string.
func pickleStr(s string) []byte {
	b := []byte{'X', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], uint32(len(s)))
	return append(b, s...)
}

// A tampered model state must not touch the filesystem while it is refused. The pickle names a
// class reachable from a scikit-learn module, sklearn.datasets._covtype.GzipFile (gzip's class,
// imported there), and calls GzipFile(path, "wb"), which truncates the file. (numpy's
// DataSource, whose finalizer rmtree()s a path the state sets, is in
// python/tests/test_sklearn_bridge.py: the finalizer runs when the worker collects garbage.)
func TestTamperedStateTouchesNoFile(t *testing.T) {
	ctx := context.Background()
	c, p := open(t)
	precious := filepath.Join(t.TempDir(), "precious.txt")
	if err := os.WriteFile(precious, []byte("important data"), 0o600); err != nil {
		t.Fatal(err)
	}
	truncate := append([]byte("\x80\x02csklearn.datasets._covtype\nGzipFile\n"), pickleStr(precious)...)
	truncate = append(append(truncate, pickleStr("wb")...), "\x86R."...)
	if _, err := p.Define(ctx, store.Definition{ID: "tampered", Kind: "model",
		Spec: map[string]any{"estimator": "LogisticRegression"}, State: truncate}); err != nil {
		t.Fatal(err)
	}
	x := mlbridge.Array{DType: "float64", Shape: []int{1, 4}, Data: make([]byte, 32)}
	if _, err := c.Predict(ctx, "tampered", x); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("Predict = %v; want ErrInvalidArgument", err)
	}
	if data, err := os.ReadFile(precious); err != nil || string(data) != "important data" {
		t.Errorf("the tampered state changed a file: %q, %v", data, err)
	}
}

// CreateModel on an id a definition of another kind holds (a DSPy program, in a store pools
// share) is refused: it replaced that definition, and the program was gone.
func TestCreateModelOverAnotherKind(t *testing.T) {
	ctx := context.Background()
	shared := store.NewMemory()
	program := store.Definition{ID: "shared", Kind: "program", Spec: map[string]any{"signature": "question -> answer"}}
	if _, err := shared.Put(ctx, program); err != nil {
		t.Fatal(err)
	}
	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{
		Config: mlbridge.Config{Bridge: sklearn.Bridge, Python: testenv.Python(t)}, Size: 1, Store: shared})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	cs := sklearn.New(p)
	if err := cs.CreateModel(ctx, "shared", sklearn.Estimator{Name: "LogisticRegression"}); !errors.Is(err, mlbridge.ErrInvalidArgument) {
		t.Fatalf("CreateModel over a program: %v; want ErrInvalidArgument", err)
	}
	if d, err := shared.Get(ctx, "shared"); err != nil || d.Kind != "program" {
		t.Fatalf("the program after CreateModel: %+v, %v", d, err)
	}
	// a model id is redefined as before
	for range 2 {
		if err := cs.CreateModel(ctx, "m", sklearn.Estimator{Name: "LogisticRegression"}); err != nil {
			t.Fatal(err)
		}
	}
}
