// Package pyenv prepares a Python environment for mlbridge workers: a virtual environment
// with the worker runtime's dependencies and the packages of chosen framework extras (the
// lists of python/pyproject.toml), installed with uv when there is one and pip otherwise,
// or synced from a uv.lock. It is what `mlbridge python setup` runs.
package pyenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	pyruntime "github.com/mlbridge/mlbridge/python"
)

const minMajor, minMinor = 3, 11

var (
	// ErrUnknownExtra: an extra that python/pyproject.toml does not define.
	ErrUnknownExtra = errors.New("unknown extra")
	// ErrNoPython: no interpreter to make the environment with.
	ErrNoPython = errors.New("no Python interpreter")
	// ErrOldPython: the interpreter is older than the worker supports.
	ErrOldPython = errors.New("Python too old")
	// ErrNoUV: uv is required (a lockfile) and was not found.
	ErrNoUV = errors.New("uv not found")
	// ErrInstall: the installer failed.
	ErrInstall = errors.New("install failed")
)

// Options say what environment to prepare.
type Options struct {
	Venv      string   // the virtual environment's directory (created when missing)
	Python    string   // the interpreter to create it with (default python3.11, python3, python)
	Extras    []string // extras of the worker package ("all": every one)
	Lock      string   // a uv.lock: `uv sync --frozen` its project into Venv (reproducible installs)
	SyncArgs  []string // more arguments for uv sync (with Lock)
	UV        string   // the uv executable (default: uv on PATH, else .tools/uv/bin/uv above the working directory)
	Installer string   // "auto" (uv if found, else pip), "uv" or "pip"
	Out       io.Writer
}

// Result says what Setup did.
type Result struct {
	Python    string   // the environment's interpreter
	Installed []string // requirements installed by this run (nil: nothing to do, or a lock sync)
	Created   bool     // the environment was created
}

// ResolveExtras expands "all", removes repeats and refuses extras the worker package does not
// define, naming the ones it does.
func ResolveExtras(reqs pyruntime.Requirements, extras []string) ([]string, error) {
	known := reqs.ExtraNames()
	var out []string
	for _, e := range extras {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case e == "all":
			out = append(out, known...)
		case reqs.Extras[e] == nil && !slices.Contains(known, e):
			return nil, fmt.Errorf("%w %q (known: %s, all)", ErrUnknownExtra, e, strings.Join(known, ", "))
		default:
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

type setup struct {
	opts Options
	reqs pyruntime.Requirements
	uv   string // "" with pip
}

// Setup prepares the environment. Idempotent: when everything asked for is installed at an
// accepted version it starts one interpreter to check and installs nothing.
func Setup(ctx context.Context, opts Options) (Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Venv == "" {
		opts.Venv = ".venv"
	}
	venv, err := filepath.Abs(opts.Venv)
	if err != nil {
		return Result{}, err
	}
	opts.Venv = venv
	reqs, err := pyruntime.LoadRequirements()
	if err != nil {
		return Result{}, err
	}
	extras, err := ResolveExtras(reqs, opts.Extras)
	if err != nil {
		return Result{}, err
	}
	opts.Extras = extras
	s := &setup{opts: opts, reqs: reqs}
	if s.uv, err = chooseInstaller(opts); err != nil {
		return Result{}, err
	}
	if opts.Lock != "" {
		return s.sync(ctx)
	}
	res := Result{Python: VenvPython(venv)}
	if !IsVenv(venv) {
		base, err := interpreter(ctx, opts.Python)
		if err != nil {
			return res, err
		}
		if err := s.createVenv(ctx, base); err != nil {
			return res, err
		}
		res.Created = true
	}
	want := append([]string{}, reqs.Runtime...)
	for _, e := range extras {
		want = append(want, reqs.Extras[e]...)
	}
	todo, err := missing(ctx, res.Python, want)
	if err != nil {
		return res, err
	}
	if len(todo) == 0 {
		s.printf("%s has everything for %s: nothing to install\n", venv, describe(extras))
		return res, nil
	}
	if err := s.install(ctx, res.Python, todo); err != nil {
		return res, err
	}
	if still, err := missing(ctx, res.Python, want); err != nil {
		return res, err
	} else if len(still) > 0 {
		return res, fmt.Errorf("%w: after installing, %s still lacks %s", ErrInstall, venv, strings.Join(still, ", "))
	}
	res.Installed = todo
	s.printf("ready: %s (%s)\n", res.Python, describe(extras))
	return res, nil
}

func describe(extras []string) string {
	if len(extras) == 0 {
		return "the worker runtime"
	}
	return "the worker runtime and extras " + strings.Join(extras, ", ")
}

func (s *setup) printf(format string, args ...any) {
	fmt.Fprintf(s.opts.Out, "mlbridge: "+format, args...)
}

// environ is the installers' environment: never let uv download an interpreter, and build
// llama.cpp portably (cmake.go).
func (s *setup) environ() []string {
	env := append(os.Environ(), "UV_PYTHON_DOWNLOADS=never")
	if slices.Contains(s.opts.Extras, "local") || s.opts.Lock != "" {
		env = withCMakeArgs(env)
	}
	return env
}
