package migrate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

// shapes is a package of every shape of legacy use, added to a copy of testdata/legacyapp (the
// analysistest packages under testdata/src use a stand-in adapters without Deprecated notes,
// which staticcheck would not report at all).
var shapes = map[string]string{
	"shapes.go": `package shapes

import (
	"context"

	legacy "github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
)

// Service holds the legacy pool in a field.
type Service struct {
	pool *legacy.PythonPoolV2
}

// Embedding promotes the legacy methods.
type Embedding struct{ *legacy.PythonPort }

// Open takes the legacy options as a parameter.
func Open(ctx context.Context, o legacy.Options) (*Service, error) {
	p, err := legacy.NewPythonPoolV2(ctx, o)
	if err != nil {
		return nil, err
	}
	return &Service{pool: p}, nil
}

// Shapes uses the legacy methods every way.
func (s *Service) Shapes(ctx context.Context, e Embedding) error {
	run := s.pool.ExecuteProgram                  // a method value
	info := (*legacy.PythonPoolV2).GetProgramInfo // a method expression
	_, _ = run, info
	if _, err := e.ListPrograms(ctx); err != nil { // a promoted call
		return err
	}
	var cfg legacy.LMConfig = dspy.LMConfig{Provider: "dummy"}
	_ = legacy.GetStats()
	return s.pool.ConfigureLM(ctx, cfg)
}

// Kind switches on the legacy types.
func Kind(v any) string {
	switch v.(type) {
	case *legacy.PythonPoolV2:
		return "pool"
	case *legacy.PythonPort:
		return "port"
	}
	return ""
}

// Health is the old check.
//
// Deprecated: use Shapes.
func (s *Service) Health(ctx context.Context) error { return s.pool.HealthCheck(ctx) }

// Old is the old entry point.
//
// Deprecated: use Open.
func Old(ctx context.Context) (*legacy.PythonPoolV2, error) { return legacy.Default(ctx) }

// staticcheck counts this declaration as inside Old: its current function is the last one.
var defaultOption = legacy.WithModule("Predict")

// Close is after the next function: a use again, which a directive silences.
func Close() error {
	_ = defaultOption
	//lint:ignore SA1019 the default pool stays until the registry lands
	return legacy.CloseDefault()
}
`,
	"quiet.go": `//lint:file-ignore SA1019 this file keeps the legacy API on purpose

package shapes

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

func quiet(ctx context.Context, p *adapters.PythonPort) error {
	_ = p.HealthCheck(ctx)
	return adapters.HealthCheck(ctx)
}
`,
	"dot.go": `package shapes

import (
	"context"

	. "github.com/mlbridge/mlbridge/adapters"
)

// Dotted uses dot-imported legacy names, and a method through them.
func Dotted(ctx context.Context) (LMConfig, error) {
	p, err := NewPythonPoolV2(ctx, Options{Workers: 1})
	if err != nil {
		return LMConfig{}, err
	}
	return LMConfig{}, p.HealthCheck(ctx)
}
`,
	"renames.go": `package shapes

import (
	"github.com/mlbridge/mlbridge/adapters"
	"github.com/mlbridge/mlbridge/dspy"
)

// Info has only renames, and dspy is imported already: the legacy import goes.
func Info() (adapters.ProgramInfo, dspy.FieldInfo) { return adapters.ProgramInfo{}, dspy.FieldInfo{} }
`,
	"tagged.go": `//go:build integration

package shapes

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

func tagged(p *adapters.PythonPoolV2) func(context.Context) error { return p.HealthCheck }
`,
	"shapes_test.go": `package shapes

import (
	"testing"

	"github.com/mlbridge/mlbridge/adapters"
)

func TestKind(t *testing.T) {
	if Kind(&adapters.PythonPort{}) != "port" {
		t.Fatal("not a port")
	}
}
`,
	"ext_test.go": `package shapes_test

import (
	"testing"

	"github.com/mlbridge/mlbridge/adapters"
)

func TestOptions(t *testing.T) {
	var info adapters.ProgramInfo
	_, _ = adapters.Options{Workers: 1}, info
}
`,
}

// `migrate status` counts, as SA1019, the uses staticcheck's SA1019 reports: the same
// file:line positions exactly, on testdata/legacyapp and on every shape of use, before and
// after --apply, with and without the build tag of a tagged file.
func TestSA1019MatchesStaticcheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds staticcheck and loads a copy of testdata/legacyapp")
	}
	testenv.Staticcheck(t)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	for _, tc := range []struct {
		name   string
		shapes bool
	}{{"legacyapp", false}, {"shapes", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := testenv.LegacyApp(t)
			if tc.shapes {
				if err := os.Mkdir(filepath.Join(dir, "shapes"), 0o755); err != nil {
					t.Fatal(err)
				}
				for name, src := range shapes {
					if err := os.WriteFile(filepath.Join(dir, "shapes", name), []byte(src), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				compare(t, dir, "with -tags integration", "integration")
			}
			res := compare(t, dir, "before --apply")
			if err := res.Write(); err != nil {
				t.Fatal(err)
			}
			if res = compare(t, dir, "after --apply"); len(res.Changed) != 0 {
				t.Errorf("a second run still changes files:\n%s", res.Diff)
			}
		})
	}
}

// compare runs the analyzer and staticcheck's SA1019 on dir with tags and checks that the
// findings marked SA1019 are at staticcheck's positions (file:line, each as often).
func compare(t *testing.T, dir, when string, tags ...string) *migrate.Result {
	t.Helper()
	res, err := migrate.Config{Dir: dir, Tags: tags}.Run("./...")
	if err != nil {
		t.Fatal(err)
	}
	var ours []string
	why := map[string]int{}
	for _, f := range res.Findings {
		if f.SA1019 {
			ours = append(ours, fmt.Sprintf("%s:%d", rel(t, dir, f.File), f.Line))
		} else {
			why[f.NotSA1019]++
		}
	}
	var theirs []string
	for _, pos := range testenv.SA1019(t, dir, tags...) {
		fileLine := pos[:strings.LastIndexByte(pos, ':')] // file:line:col
		i := strings.LastIndexByte(fileLine, ':')
		theirs = append(theirs, rel(t, dir, fileLine[:i])+fileLine[i:])
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	t.Logf("%s: %d findings, %d seen by SA1019 (not: %v); staticcheck SA1019 reported %d", when, len(res.Findings), res.SA1019(), why, len(theirs))
	if res.SA1019() != len(ours) || !slices.Equal(ours, theirs) {
		t.Errorf("%s: the findings marked SA1019 are not staticcheck's:\nours:\n  %s\nstaticcheck:\n  %s", when, strings.Join(ours, "\n  "), strings.Join(theirs, "\n  "))
	}
	return res
}

func rel(t *testing.T, dir, file string) string {
	r, err := filepath.Rel(dir, file)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
