package migrate_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/mlbridge/mlbridge/internal/testenv"
	"github.com/mlbridge/mlbridge/migrate"
)

const tagged = `//go:build integration

package legacyapp

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

func health(p *adapters.PythonPoolV2) func(context.Context) error {
	return p.HealthCheck
}
`

// A file behind a build tag is left out of the build the analyzer sees: without the tag it is
// reported as not analyzed; with Config.Tags its legacy uses are reported with their
// replacement.
func TestRunReportsFilesBehindBuildTags(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	file := filepath.Join(dir, "tagged.go")
	if err := os.WriteFile(file, []byte(tagged), 0o644); err != nil {
		t.Fatal(err)
	}
	in := func(res *migrate.Result) []string {
		var got []string
		for _, f := range res.Findings {
			if filepath.Base(f.File) == "tagged.go" {
				got = append(got, strings.Join([]string{filepath.Base(f.File), strconv.Itoa(f.Line), f.Message}, ":"))
			}
		}
		return got
	}

	res, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	want := "tagged.go:8:tagged.go imports deprecated adapters but is not in this build (//go:build integration): its uses are not analyzed; run mlbridge migrate --tags with tags that include it"
	if got := in(res); len(got) != 1 || got[0] != want {
		t.Errorf("without the tag:\n got %q\nwant %q", got, want)
	}

	res, err = migrate.Config{Dir: dir, Tags: []string{"integration"}}.Run("./...")
	if err != nil {
		t.Fatal(err)
	}
	want = "tagged.go:12:p.HealthCheck uses deprecated adapters.PythonPoolV2.HealthCheck: replace with p.Client.Adapter().Health"
	if got := in(res); !contains(got, want) || contains(got, "not in this build") {
		t.Errorf("with -tags integration:\n got %q\nwant %q", got, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

// A file whose name selects another GOOS is left out whatever the tags: the finding says to
// set GOOS, and with GOOS set the analyzer sees its uses.
func TestRunReportsFilesOfAnotherGOOS(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	other := "windows"
	if runtime.GOOS == other {
		other = "linux"
	}
	dir := testenv.LegacyApp(t)
	name := "health_" + other + ".go"
	src := strings.Replace(tagged, "//go:build integration\n\n", "", 1)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	in := func(res *migrate.Result) []string {
		var got []string
		for _, f := range res.Findings {
			if filepath.Base(f.File) == name {
				got = append(got, strconv.Itoa(f.Line)+":"+f.Message)
			}
		}
		return got
	}
	res, err := migrate.Config{Dir: dir, Tags: []string{"integration"}}.Run("./...")
	if err != nil {
		t.Fatal(err)
	}
	want := "6:" + name + " imports deprecated adapters but is not in this build (its file name's GOOS/GOARCH): its uses are not analyzed; run mlbridge migrate with GOOS/GOARCH set as its file name says (GOOS=<os> mlbridge migrate ./...)"
	if got := in(res); len(got) != 1 || got[0] != want {
		t.Errorf("GOOS=%s:\n got %q\nwant %q", runtime.GOOS, got, want)
	}
	t.Setenv("GOOS", other)
	res, err = migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	want = "10:p.HealthCheck uses deprecated adapters.PythonPoolV2.HealthCheck: replace with p.Client.Adapter().Health"
	if got := in(res); !contains(got, want) || contains(got, "not in this build") {
		t.Errorf("GOOS=%s:\n got %q\nwant %q", other, got, want)
	}
}

const generator = `//go:build ignore

// Command gen is run by go generate (go run gen.go).
package main

import (
	"context"

	"github.com/mlbridge/mlbridge/adapters"
)

func main() {
	p, _ := adapters.NewPythonPoolV2(context.Background(), adapters.Options{})
	_ = p.HealthCheck(context.Background())
}
`

// A generator behind //go:build ignore cannot be included by tags (-tags ignore also pulls in
// the standard library's ignored files): the finding says to name the file, and a run on the
// file analyzes it.
func TestRunReportsIgnoredGenerators(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a copy of testdata/legacyapp")
	}
	dir := testenv.LegacyApp(t)
	gen := filepath.Join(dir, "gen.go")
	if err := os.WriteFile(gen, []byte(generator), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := migrate.Run(dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	want := "gen.go imports deprecated adapters but is not in this build (//go:build ignore): its uses are not analyzed; name it on the command line, which analyzes it whatever its //go:build line: mlbridge migrate " + gen
	var got []string
	for _, f := range res.Findings {
		if f.File == gen {
			got = append(got, f.Message)
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("gen.go:\n got %q\nwant %q", got, want)
	}
	res, err = migrate.Run(dir, gen)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.Changed[gen]), "_ = p.Client.Adapter().Health(context.Background())") {
		t.Errorf("migrate gen.go: the call is not rewritten:\n%s", res.Diff)
	}
}
