package pyenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// chooseInstaller returns the uv executable to use, or "" for pip.
func chooseInstaller(opts Options) (string, error) {
	switch opts.Installer {
	case "", "auto", "uv":
	case "pip":
		if opts.Lock != "" {
			return "", fmt.Errorf("--lock needs uv (uv sync --frozen), not pip")
		}
		return "", nil
	default:
		return "", fmt.Errorf("installer %q: want auto, uv or pip", opts.Installer)
	}
	uv := FindUV(opts.UV)
	if uv == "" && (opts.Installer == "uv" || opts.Lock != "") {
		return "", fmt.Errorf("%w: install it (pip install uv, or ./scripts/bootstrap in this repository) or pass --uv", ErrNoUV)
	}
	return uv, nil
}

// FindUV returns explicit if given, else uv on PATH, else the mlbridge repository's own
// .tools/uv/bin/uv (scripts/bootstrap puts it there) when the working directory is inside that
// repository, else "". Only the repository's root is looked at, never any other parent: a
// .tools/uv in a shared directory such as /tmp could be anyone's.
func FindUV(explicit string) string {
	if explicit != "" {
		if p, err := exec.LookPath(explicit); err == nil {
			abs, _ := filepath.Abs(p)
			return abs
		}
		return ""
	}
	if p, err := exec.LookPath("uv"); err == nil {
		return p
	}
	root := repoRoot()
	if root == "" {
		return ""
	}
	p := filepath.Join(root, ".tools", "uv", "bin", "uv")
	if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode().Perm()&0o022 == 0 {
		return p
	}
	return ""
}

// repoRoot is the nearest directory at or above the working directory whose go.mod declares
// the mlbridge module, or "".
func repoRoot() string {
	dir, err := os.Getwd()
	for err == nil {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if first, _, _ := bytes.Cut(raw, []byte("\n")); string(bytes.TrimSpace(first)) == "module github.com/mlbridge/mlbridge" {
				return dir
			}
			return "" // inside another module: its .tools are not ours to run
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return ""
}

// install installs reqs into the environment of python.
func (s *setup) install(ctx context.Context, python string, reqs []string) error {
	var cmd *exec.Cmd
	if s.uv != "" {
		s.printf("installing with uv: %s\n", strings.Join(reqs, " "))
		cmd = exec.CommandContext(ctx, s.uv, append([]string{"pip", "install", "--python", python}, reqs...)...)
	} else {
		if err := s.ensurePip(ctx, python); err != nil {
			return err
		}
		s.printf("installing with pip: %s\n", strings.Join(reqs, " "))
		cmd = exec.CommandContext(ctx, python, append([]string{"-m", "pip", "install",
			"--disable-pip-version-check", "--progress-bar", "off"}, reqs...)...)
	}
	if err := s.run(ctx, installing(reqs), cmd); err != nil {
		return fmt.Errorf("%w: %v", ErrInstall, err)
	}
	return nil
}

// sync installs a locked project (uv sync --frozen) into the environment, with the extras.
func (s *setup) sync(ctx context.Context) (Result, error) {
	res := Result{Python: VenvPython(s.opts.Venv)}
	lock, err := filepath.Abs(s.opts.Lock)
	if err != nil {
		return res, err
	}
	if filepath.Base(lock) != "uv.lock" {
		return res, fmt.Errorf("--lock %s: want a uv.lock beside its pyproject.toml", s.opts.Lock)
	}
	if _, err := os.Stat(lock); err != nil {
		return res, fmt.Errorf("--lock: %w", err)
	}
	res.Created = !IsVenv(s.opts.Venv)
	args := []string{"sync", "--frozen", "--project", filepath.Dir(lock)}
	// An existing environment is kept as it is unless an interpreter is asked for.
	if res.Created || s.opts.Python != "" {
		base, err := interpreter(ctx, s.opts.Python)
		if err != nil {
			return res, err
		}
		args = append(args, "--python", base)
	}
	if len(s.opts.Extras) > 0 && len(s.opts.Extras) == len(s.reqs.Extras) {
		args = append(args, "--all-extras")
	} else {
		for _, e := range s.opts.Extras {
			args = append(args, "--extra", e)
		}
	}
	args = append(args, s.opts.SyncArgs...)
	cmd := exec.CommandContext(ctx, s.uv, args...)
	cmd.Env = append(s.environ(), "UV_PROJECT_ENVIRONMENT="+s.opts.Venv)
	if res.Created {
		s.printf("creating %s from %s; the first time, llama.cpp may be compiled (several minutes)\n", s.opts.Venv, s.opts.Lock)
	}
	// The lock's dev group holds every extra: llama.cpp compiles on a first sync whatever
	// extras were asked for.
	what := "still syncing " + s.opts.Venv + " with " + s.opts.Lock
	if !s.has(ctx, res.Python, "llama_cpp") {
		what = "still installing llama-cpp-python (compiling llama.cpp, several minutes)"
	}
	if err := s.run(ctx, what, cmd); err != nil {
		return res, fmt.Errorf("%w: %v", ErrInstall, err)
	}
	return res, nil
}

// has reports whether python imports module (false when there is no python yet).
func (s *setup) has(ctx context.Context, python, module string) bool {
	return exec.CommandContext(ctx, python, "-c", "import "+module).Run() == nil
}

// installing is the heartbeat line for an install of reqs.
func installing(reqs []string) string {
	for _, r := range reqs {
		if strings.HasPrefix(r, "llama-cpp-python") {
			return "still installing llama-cpp-python (compiling llama.cpp, several minutes)"
		}
	}
	names := make([]string, len(reqs))
	for i, r := range reqs {
		p, _ := parseRequirement(r)
		names[i] = p.name
	}
	return "still installing " + strings.Join(names, ", ")
}
