package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
)

// errProblems makes doctor exit non-zero after it printed what is missing.
var errProblems = errors.New("requirements not met")

func newDoctorCmd(g *globalFlags) *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a registry configuration against this machine and say what is missing",
		Long: `Reads the registry configuration (mlbridge.yaml), validates it, and for every bridge checks
what it declares it needs: environment variables, the interpreter and its version, Python
packages, the bridge module or script. Nothing is started. Exits 1 when something is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := mlbridge.LoadRegistryConfig(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w (doctor checks a registry configuration: give its path with --config, or write one: docs/ARCHITECTURE.md, \"Registry settings\")", err)
			}
			if err != nil {
				return err
			}
			if g.python != "" && cfg.Python == "" {
				cfg.Python = g.python
			}
			reg, err := mlbridge.NewRegistry(cfg, mlbridge.RegistryOptions{Logger: g.logger()})
			if err != nil {
				return err
			}
			report := map[string][]mlbridge.Problem{}
			total := 0
			for _, name := range reg.Names() {
				problems, err := reg.Check(cmd.Context(), name)
				if err != nil {
					return err
				}
				report[name] = uniqueProblems(problems)
				total += len(report[name])
			}
			w := cmd.OutOrStdout()
			if asJSON {
				if err := json.NewEncoder(w).Encode(report); err != nil {
					return err
				}
			} else {
				for _, name := range reg.Names() {
					if len(report[name]) == 0 {
						fmt.Fprintf(w, "%-12s ok\n", name)
						continue
					}
					printProblems(w, name, report[name])
				}
			}
			if total > 0 {
				return fmt.Errorf("%w: %d problem(s) in %s", errProblems, total, path)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "mlbridge.yaml", "registry configuration file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the problems per bridge as JSON")
	return cmd
}

// uniqueProblems drops repeats: the check reports a requirement once per time it is declared,
// and a module can be declared twice (the bridge's own module also listed in packages, a
// variable listed twice in env, mlbridge_worker in packages).
func uniqueProblems(ps []mlbridge.Problem) []mlbridge.Problem {
	out := []mlbridge.Problem{}
	seen := map[mlbridge.Problem]bool{}
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// printProblems prints a bridge's problems, each fix once under the problems it fixes
// (three missing modules share one "install it in that environment").
func printProblems(w io.Writer, name string, ps []mlbridge.Problem) {
	for i, p := range ps {
		fmt.Fprintf(w, "%-12s %s\n", name, p.What)
		if i == len(ps)-1 || ps[i+1].Fix != p.Fix {
			fmt.Fprintf(w, "%-12s   fix: %s\n", "", p.Fix)
		}
	}
}
