package pyruntime

import (
	"reflect"
	"strings"
	"testing"
)

func TestPythonSetupExtrasFromPyProject(t *testing.T) {
	r, err := LoadRequirements()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.ExtraNames(), []string{"dspy", "langchain", "local", "mipro", "otel", "sklearn"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("extras %v, want %v", got, want)
	}
	if !strings.HasPrefix(r.Runtime[0], "msgpack") {
		t.Fatalf("runtime requirements %q: msgpack first", r.Runtime)
	}
	if len(r.Runtime) != 2 || !strings.Contains(r.Runtime[1], `sys_platform != "win32"`) {
		t.Fatalf("uvloop requirement lost its marker: %q", r.Runtime)
	}
	if got := r.Extras["sklearn"]; !reflect.DeepEqual(got, []string{"scikit-learn>=1.5,<2", "numpy>=2"}) {
		t.Fatalf("sklearn extra %q", got)
	}
	if got := r.Extras["local"]; len(got) != 2 || !strings.HasPrefix(got[0], "llama-cpp-python") {
		t.Fatalf("local extra %q", got)
	}
}

func TestPythonSetupParseRequirements(t *testing.T) {
	src := `
[project]
name = "x"   # a comment
dependencies = [
    "a>=1",  # why a
    "b; sys_platform != \"win32\"",
]
[project.optional-dependencies]
one = ["c # not a comment", "d"]
"two" = []
[dependency-groups]
dev = ["e"]
`
	r, err := parseRequirements(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Requirements{
		Runtime: []string{"a>=1", `b; sys_platform != "win32"`},
		Extras:  map[string][]string{"one": {"c # not a comment", "d"}, "two": nil},
	}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %#v\nwant %#v", r, want)
	}
	if _, err := parseRequirements("[project]\nname = \"x\"\n"); err == nil {
		t.Fatal("a pyproject without dependencies parsed")
	}
	if _, err := parseRequirements("[project]\ndependencies = [\"a\n"); err == nil {
		t.Fatal("an unterminated array parsed")
	}
}
