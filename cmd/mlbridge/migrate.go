package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge/migrate"
)

// analyze runs the migration analyzer on args (default ./...) in dir.
func analyze(dir string, args []string) (*migrate.Result, error) {
	if len(args) == 0 {
		args = []string{"./..."}
	}
	return migrate.Run(dir, args...)
}

func newMigrateCmd() *cobra.Command {
	var apply bool
	var dir string
	cmd := &cobra.Command{
		Use:   "migrate [packages]",
		Short: "Rewrite uses of the legacy DSPy API that go fix cannot, and list the rest",
		Long: `Run 'go fix ./...' first: it rewrites every legacy call whose replacement is the method's
own body. migrate then renames the legacy type aliases and options to package dspy (fixing the
imports), and lists what needs a person: constructors and the package-level default pool become
registry lookups (docs/MIGRATION.md). Without --apply it prints a unified diff and changes
nothing. Running it again after --apply finds nothing more to rewrite.`,
		Example: "  mlbridge migrate ./...          # dry run: diff and findings\n  mlbridge migrate --apply ./...",
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := analyze(dir, args)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprint(w, res.Diff)
			for _, f := range res.Findings {
				if !f.Fixable {
					fmt.Fprintf(w, "%s:%d: %s\n", f.File, f.Line, f.Message)
				}
			}
			if apply {
				if err := res.Write(); err != nil {
					return err
				}
				fmt.Fprintf(w, "rewrote %d file(s)\n", len(res.Changed))
			} else if len(res.Changed) > 0 {
				fmt.Fprintf(w, "dry run: %d file(s) would change; --apply writes them\n", len(res.Changed))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "write the rewrites (default: print a diff only)")
	cmd.PersistentFlags().StringVarP(&dir, "dir", "C", ".", "the module directory to analyze")
	cmd.AddCommand(newMigrateStatusCmd(&dir))
	return cmd
}

func newMigrateStatusCmd(dir *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [packages]",
		Short: "Count the legacy API's uses per API and per file",
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := analyze(*dir, args)
			if err != nil {
				return err
			}
			perAPI, perFile := map[string]int{}, map[string]int{}
			for _, f := range res.Findings {
				perAPI[f.API]++
				perFile[f.File]++
			}
			w := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(w).Encode(map[string]any{
					"total": len(res.Findings), "per_api": perAPI, "per_file": perFile, "findings": res.Findings,
				})
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "legacy uses\t%d\n", len(res.Findings))
			for _, k := range sortedKeys(perAPI) {
				fmt.Fprintf(tw, "  %s\t%d\n", k, perAPI[k])
			}
			for _, k := range sortedKeys(perFile) {
				fmt.Fprintf(tw, "  %s\t%d\n", k, perFile[k])
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
