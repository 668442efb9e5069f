package main

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

//go:embed templates/*.tmpl
var templates embed.FS

// scaffold is what the templates see.
type scaffold struct {
	Name       string // greeter: the Go package, the Python module prefix
	Title      string // Greeter: the Python class prefix
	ImportPath string // the Go package's import path
}

func newNewBridgeCmd() *cobra.Command {
	var dir string
	var force bool
	cmd := &cobra.Command{
		Use:   "new-bridge NAME",
		Short: "Scaffold a bridge for a framework: a Python bridge, a typed Go client, and their tests",
		Long: `Writes, into --dir (default ./NAME):
  python/NAME_bridge.py       the Python bridge: sync, async and streaming handlers, a resource kind
  python/test_NAME_bridge.py  its pytest tests
  NAME.go                     a typed Go client over any mlbridge.Adapter
  NAME_test.go                its Go test, running the bridge in a real worker
The directory must be inside a Go module; the tests pass as generated. NAME is lower case
letters and digits, and neither a Go nor a Python keyword. See docs/ADDING_A_FRAMEWORK.md.`,
		Example: "  mlbridge new-bridge greeter --dir examples/greeter",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkBridgeName(name); err != nil {
				return err
			}
			if dir == "" {
				dir = name
			}
			files, err := renderScaffold(name, dir)
			if err != nil {
				return err
			}
			for path := range files {
				if _, err := os.Stat(path); err == nil && !force {
					return fmt.Errorf("%s exists (--force overwrites)", path)
				}
			}
			for path, data := range files {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(path, data, 0o644); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "where to write (default ./NAME)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing files")
	return cmd
}

// renderScaffold returns the files of a new bridge by path.
func renderScaffold(name, dir string) (map[string][]byte, error) {
	importPath, err := importPathOf(dir)
	if err != nil {
		return nil, err
	}
	if err := module.CheckImportPath(importPath); err != nil {
		return nil, fmt.Errorf("%s would be imported as %q, which Go refuses: %w (choose another --dir)", dir, importPath, err)
	}
	return render(scaffold{Name: name, Title: strings.ToUpper(name[:1]) + name[1:], ImportPath: importPath}, dir)
}

// render executes the templates; Go files come out gofmt-clean whatever the import path
// (gofmt sorts the test's imports, and a module path such as example.com/app sorts before
// github.com/mlbridge/mlbridge).
func render(data scaffold, dir string) (map[string][]byte, error) {
	name := data.Name
	out := map[string][]byte{}
	for tmpl, path := range map[string]string{
		"bridge.py.tmpl":      filepath.Join(dir, "python", name+"_bridge.py"),
		"test_bridge.py.tmpl": filepath.Join(dir, "python", "test_"+name+"_bridge.py"),
		"client.go.tmpl":      filepath.Join(dir, name+".go"),
		"client_test.go.tmpl": filepath.Join(dir, name+"_test.go"),
	} {
		t, err := template.ParseFS(templates, "templates/"+tmpl)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return nil, err
		}
		src := b.Bytes()
		if strings.HasSuffix(path, ".go") {
			if src, err = format.Source(src); err != nil {
				return nil, fmt.Errorf("%s: generated Go does not parse: %w", tmpl, err)
			}
		}
		out[path] = src
	}
	return out, nil
}

// importPathOf finds the Go module containing dir and returns dir's import path in it.
func importPathOf(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for root := abs; ; root = filepath.Dir(root) {
		data, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err == nil {
			mod := modfile.ModulePath(data)
			if mod == "" {
				return "", fmt.Errorf("%s/go.mod has no module line", root)
			}
			rel, err := filepath.Rel(root, abs)
			if err != nil {
				return "", err
			}
			return strings.TrimSuffix(mod+"/"+filepath.ToSlash(rel), "/."), nil
		}
		if filepath.Dir(root) == root {
			return "", errors.New("the directory is not inside a Go module (run `go mod init` first)")
		}
	}
}
