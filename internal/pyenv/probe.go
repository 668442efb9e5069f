package pyenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// probeScript prints the interpreter's version, its marker values, and the installed
// version of each distribution named in argv (null when absent).
const probeScript = `import importlib.metadata as md, json, os, platform, sys
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
env = {
    "os_name": os.name, "sys_platform": sys.platform, "platform_system": platform.system(),
    "platform_machine": platform.machine(), "platform_release": platform.release(),
    "platform_python_implementation": platform.python_implementation(),
    "implementation_name": sys.implementation.name,
    "python_version": "%d.%d" % sys.version_info[:2], "python_full_version": platform.python_version(),
}
print(json.dumps({"version": list(sys.version_info[:2]), "executable": sys.executable, "env": env,
                  "installed": {n: version(n) for n in sys.argv[1:]}}))`

type probe struct {
	Version    []int              `json:"version"`
	Executable string             `json:"executable"` // the real interpreter behind a shim (pyenv)
	Env        map[string]string  `json:"env"`
	Installed  map[string]*string `json:"installed"`
}

func runProbe(ctx context.Context, python string, names ...string) (probe, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, append([]string{"-c", probeScript}, names...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return probe{}, fmt.Errorf("%s does not run: %v %s", python, err, strings.TrimSpace(stderr.String()))
	}
	var p probe
	if err := json.Unmarshal(out.Bytes(), &p); err != nil || len(p.Version) < 2 {
		return probe{}, fmt.Errorf("%s answered %q", python, out.String())
	}
	return p, nil
}

// interpreter returns the interpreter a new environment is made from: the one behind base,
// if base is a shim (pyenv) — uv takes a shim's path for another interpreter than the one
// an environment made through it records, and would rebuild that environment on every sync.
func interpreter(ctx context.Context, explicit string) (string, error) {
	base, err := basePython(explicit)
	if err != nil {
		return "", err
	}
	p, err := runProbe(ctx, base)
	if err != nil {
		return "", err
	}
	if err := p.checkPython(base); err != nil {
		return "", err
	}
	if p.Executable != "" {
		return p.Executable, nil
	}
	return base, nil
}

// checkPython refuses interpreters older than the worker supports.
func (p probe) checkPython(python string) error {
	if p.Version[0] < minMajor || (p.Version[0] == minMajor && p.Version[1] < minMinor) {
		return fmt.Errorf("%w: %s is Python %d.%d, mlbridge needs %d.%d+ (pass --python)",
			ErrOldPython, python, p.Version[0], p.Version[1], minMajor, minMinor)
	}
	return nil
}

// missing returns the requirements that apply to this interpreter and are not installed
// at a version they accept.
func missing(ctx context.Context, python string, reqs []string) ([]string, error) {
	parsed := make([]requirement, 0, len(reqs))
	names := make([]string, 0, len(reqs))
	for _, s := range reqs {
		r, err := parseRequirement(s)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, r)
		names = append(names, r.name)
	}
	p, err := runProbe(ctx, python, names...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range parsed {
		if r.marker != "" {
			applies, err := evalMarker(r.marker, p.Env)
			if err != nil {
				out = append(out, r.raw) // unsure: let the installer decide
				continue
			}
			if !applies {
				continue
			}
		}
		if v := p.Installed[r.name]; v == nil || !r.satisfiedBy(*v) {
			out = append(out, r.raw)
		}
	}
	return out, nil
}
