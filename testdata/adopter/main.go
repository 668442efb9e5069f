// A program outside the mlbridge repository, as a Go team adopting it writes one: its own
// bridge module, an interpreter holding only msgpack, no mlbridge Python package installed.
// TestAdoptionOutsideTheRepository copies it into a fresh module and runs it.
package main

import (
	"context"
	"fmt"
	"iter"
	"log"
	"strings"

	"github.com/mlbridge/mlbridge"
)

type ops struct {
	call   func(op string, args any) (mlbridge.Result, error)
	submit func(op string, args any) *mlbridge.Future
	stream func(op string, args any) iter.Seq2[mlbridge.Result, error]
}

func main() {
	ctx := context.Background()
	cfg := mlbridge.Config{Bridge: "mybridge:MyBridge", PythonPath: []string{"bridges"}}

	b, err := mlbridge.Open(ctx, cfg)
	check(err)
	exercise(ctx, "open", ops{
		call:   func(op string, a any) (mlbridge.Result, error) { return b.Call(ctx, op, a) },
		submit: func(op string, a any) *mlbridge.Future { return b.Submit(ctx, op, a) },
		stream: func(op string, a any) iter.Seq2[mlbridge.Result, error] { return b.Stream(ctx, op, a) },
	})
	check(b.Close())

	p, err := mlbridge.OpenPool(ctx, mlbridge.PoolConfig{Config: cfg, Size: 2})
	check(err)
	exercise(ctx, "pool", adapterOps(ctx, p))
	check(p.Close())

	reg, err := mlbridge.OpenRegistry("mlbridge.yaml", mlbridge.RegistryOptions{})
	check(err)
	a, err := reg.Adapter(ctx, "mine")
	check(err)
	exercise(ctx, "registry", adapterOps(ctx, a))
	check(reg.Close())
}

func adapterOps(ctx context.Context, a mlbridge.Adapter) ops {
	return ops{
		call:   func(op string, args any) (mlbridge.Result, error) { return a.Call(ctx, op, args) },
		submit: func(op string, args any) *mlbridge.Future { return a.Submit(ctx, op, args) },
		stream: func(op string, args any) iter.Seq2[mlbridge.Result, error] { return a.Stream(ctx, op, args) },
	}
}

// exercise prints one line: a sync handler through Call, an async one through Submit, a
// generator through Stream, and where the worker found the runtime.
func exercise(ctx context.Context, name string, o ops) {
	sum, err := mlbridge.Decode[int](o.call("add", map[string]any{"a": 40, "b": 2}))
	check(err)
	loud, err := mlbridge.Decode[string](o.submit("shout", map[string]any{"text": "hello"}).Wait(ctx))
	check(err)
	var items []string
	for r, err := range o.stream("count", map[string]any{"n": 3}) {
		check(err)
		n, err := mlbridge.Decode[int](r, nil)
		check(err)
		items = append(items, fmt.Sprint(n))
	}
	where, err := mlbridge.Decode[map[string]any](o.call("where", nil))
	check(err)
	fmt.Printf("%s: add=%d shout=%s count=%s runtime=%v numpy=%v\n",
		name, sum, loud, strings.Join(items, ","), where["runtime"], where["numpy"])
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
