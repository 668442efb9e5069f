package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge/internal/pyenv"
	pyruntime "github.com/mlbridge/mlbridge/python"
)

func newPythonCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "python",
		Short: "Manage the Python environment the workers run in",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPythonSetupCmd(g))
	return cmd
}

func newPythonSetupCmd(g *globalFlags) *cobra.Command {
	opts := pyenv.Options{}
	known := "all"
	if reqs, err := pyruntime.LoadRequirements(); err == nil {
		known = strings.Join(reqs.ExtraNames(), ", ") + ", all"
	}
	cmd := &cobra.Command{
		Use:   "setup [--venv DIR] [--extras dspy,langchain,sklearn,local] [-- UV-SYNC-ARGS]",
		Short: "Create a virtual environment with the worker runtime's packages and the chosen frameworks'",
		Long: `Creates the virtual environment DIR if it is missing (from --python, else python3.11 or
python3 on PATH) and installs what workers need: msgpack (and uvloop where it runs), plus the
packages of each extra (` + known + `), as listed in the worker package's
pyproject.toml (built into this binary). Uses uv when it finds one (on PATH, or
.tools/uv/bin/uv of the enclosing repository), pip otherwise. Nothing is installed when
everything is already there at an accepted version.

With --lock PATH/uv.lock, the environment is instead synced exactly to that lockfile (uv sync
--frozen, with the extras), for reproducible environments; arguments after -- go to uv sync.

The local extra builds llama-cpp-python from source the first time (several minutes).
Point workers at the environment afterwards: MLBRIDGE_PYTHON=DIR/bin/python, or python: in
mlbridge.yaml. The interpreter's path is printed on stdout, progress on stderr.`,
		Example: `  mlbridge python setup --extras sklearn
  mlbridge python setup --venv /opt/ml/venv --python python3.12 --extras dspy,local
  mlbridge python setup --venv .venv --lock python/uv.lock --extras all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() < 0 && len(args) > 0 {
				return fmt.Errorf("unexpected argument %q (extras go in --extras a,b)", args[0])
			}
			if opts.Lock == "" && len(args) > 0 {
				return fmt.Errorf("arguments after -- are for uv sync: they need --lock")
			}
			opts.SyncArgs = args
			opts.Python = g.python
			opts.Out = cmd.ErrOrStderr()
			res, err := pyenv.Setup(cmd.Context(), opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Python)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Venv, "venv", ".venv", "the virtual environment's directory (created when missing)")
	f.StringSliceVar(&opts.Extras, "extras", nil, "frameworks to install, comma-separated: "+known)
	f.StringVar(&opts.Lock, "lock", "", "a uv.lock to sync the environment to exactly (uv sync --frozen)")
	f.StringVar(&opts.UV, "uv", "", "the uv executable (default: uv on PATH, else .tools/uv/bin/uv)")
	f.StringVar(&opts.Installer, "installer", "auto", "auto (uv when found, else pip), uv or pip")
	return cmd
}
