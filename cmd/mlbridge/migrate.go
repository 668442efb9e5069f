package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
	"github.com/mlbridge/mlbridge/migrate"
)

// analyze runs the migration analyzer on args (default ./...) in dir, with build tags.
func analyze(dir string, tags, args []string) (*migrate.Result, error) {
	if len(args) == 0 {
		args = []string{"./..."}
	}
	return migrate.Config{Dir: dir, Tags: tags}.Run(args...)
}

func newMigrateCmd() *cobra.Command {
	var apply, dryRun bool
	var dir string
	var tags []string
	cmd := &cobra.Command{
		Use:   "migrate [packages]",
		Short: "Rewrite uses of the legacy DSPy API that go fix cannot, and list the rest",
		Long: `Run 'go fix ./...' first (of the legacy API it inlines only adapters.DSPyBridge), then
migrate. It rewrites every legacy method call p.X(…) to p.Client.X(…), replacing only the
selector, so receivers, arguments and comments stay as written; it renames the options and type
aliases to package dspy, fixing the imports; and it lists, with file, line and replacement,
what needs a person: constructors, Options, the legacy types, method values and expressions,
and the package-level default pool (docs/MIGRATION.md).

The default is a dry run (--dry-run): a unified diff and the list, nothing written; --apply
writes the rewrites, and a second run finds nothing to rewrite. Files behind build tags are
analyzed only with --tags, and files named for another system (x_windows.go) only with GOOS
(GOARCH) set in the environment: run go fix and migrate once per tag set and system your module
builds for (a file left out is listed as "not in this build").`,
		Example: "  mlbridge migrate --dry-run ./...   # the default: diff and findings, nothing written\n  mlbridge migrate --apply ./...",
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := analyze(dir, tags, args)
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
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the diff and write nothing (the default)")
	cmd.Flags().BoolVar(&apply, "apply", false, "write the rewrites")
	cmd.MarkFlagsMutuallyExclusive("dry-run", "apply")
	cmd.PersistentFlags().StringVarP(&dir, "dir", "C", ".", "the module directory to analyze")
	cmd.PersistentFlags().StringSliceVar(&tags, "tags", nil, "build tags: files behind them are analyzed too (files left out are reported)")
	cmd.AddCommand(newMigrateStatusCmd(&dir, &tags))
	return cmd
}

func newMigrateStatusCmd(dir *string, tags *[]string) *cobra.Command {
	var asJSON bool
	var node string
	var client nodeClient
	cmd := &cobra.Command{
		Use:   "status [packages]",
		Short: "Count the legacy API's uses per API and per file; with --node, its traffic too",
		Long: `Scans the module for uses of the legacy API (per API, per file), and says how many of them
staticcheck's SA1019 check reports too: it does not see dot-imported names, names that are not deprecated (ErrDeprecated, Phase…), embedded types,
uses inside functions marked Deprecated and uses a //lint:ignore silences (docs/MIGRATION.md). With --node it also
reads a running node (a service that mounts mlbridge.NodeHandler, or 'mlbridge serve') and adds
what its traffic says: deprecated calls per API, calls and errors per path (legacy, current),
the share of calls through the current API, and the share of async handlers per bridge.`,
		Example: "  mlbridge migrate status ./...\n  mlbridge migrate status --node 127.0.0.1:7420 --json",
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := analyze(*dir, *tags, args)
			if err != nil {
				return err
			}
			var rt *migrate.Runtime
			if node != "" {
				url, err := nodeURL("node", node, "/v1/node")
				if err != nil {
					return err
				}
				st, err := fetchNode(cmd.Context(), &client, url)
				if err != nil {
					return err
				}
				r := migrate.RuntimeOf(url, st)
				rt = &r
			}
			perAPI, perFile := map[string]int{}, map[string]int{}
			notSA1019 := map[string]int{} // why staticcheck's SA1019 does not report a finding
			for _, f := range res.Findings {
				perAPI[f.API]++
				perFile[f.File]++
				if !f.SA1019 {
					notSA1019[f.NotSA1019]++
				}
			}
			notInBuild := notSA1019[migrate.NotInBuild]
			w := cmd.OutOrStdout()
			if asJSON {
				out := map[string]any{
					"total": len(res.Findings), "per_api": perAPI, "per_file": perFile, "findings": res.Findings,
					"sa1019": res.SA1019(), "not_in_build": notInBuild,
				}
				if rt != nil {
					out["runtime"] = rt
				}
				return json.NewEncoder(w).Encode(out)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			// the uses add up: those SA1019 reports too, and those it cannot see
			fmt.Fprintf(tw, "legacy uses\t%d (staticcheck SA1019 sees %d; %d dot-imported, %d inside functions marked Deprecated, %d embedded types, %d silenced by //lint:ignore, %d not deprecated)\n",
				len(res.Findings)-notInBuild, res.SA1019(), notSA1019[migrate.DotImported], notSA1019[migrate.InDeprecatedFunc],
				notSA1019[migrate.EmbeddedType], notSA1019[migrate.LintIgnored], notSA1019[migrate.NotDeprecated])
			fmt.Fprintf(tw, "files not in this build\t%d (their uses are not counted; mlbridge migrate says, per file, how to include it: --tags, GOOS/GOARCH or naming the file)\n", notInBuild)
			for _, k := range slices.Sorted(maps.Keys(perAPI)) {
				fmt.Fprintf(tw, "  %s\t%d\n", k, perAPI[k])
			}
			for _, k := range slices.Sorted(maps.Keys(perFile)) {
				fmt.Fprintf(tw, "  %s\t%d\n", k, perFile[k])
			}
			if rt != nil {
				printRuntime(tw, rt)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&node, "node", "", "a running node: host:port or http(s):// URL of 'mlbridge serve', or the URL of a mounted mlbridge.NodeHandler")
	client.flags(cmd.Flags())
	return cmd
}

func printRuntime(w io.Writer, rt *migrate.Runtime) {
	fmt.Fprintf(w, "\nnode %s at %s\n", rt.Node, rt.Time.Format(time.RFC3339))
	row := func(name string, b migrate.BridgeRuntime) {
		fmt.Fprintf(w, "%s\tcurrent API %.1f%% of calls\tlegacy %s\tcurrent %s\tasync handlers %.0f%% of %d ops\n",
			name, 100*b.NewAPIShare, countText(b.Paths["legacy"]), countText(b.Paths["current"]), 100*b.AsyncShare, b.Ops)
		if len(b.DeprecatedCalls) > 0 {
			fmt.Fprintf(w, "  deprecated calls\t%s\n", countsLine(b.DeprecatedCalls))
		}
		if len(b.ModuleCalls) > 0 {
			fmt.Fprintf(w, "  marked modules\t%s\n", countsLine(b.ModuleCalls))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rt.Bridges)) {
		row(name, rt.Bridges[name])
	}
	if len(rt.Bridges) > 1 {
		row("total", rt.Total)
	}
}

func fetchNode(ctx context.Context, client *nodeClient, url string) (mlbridge.NodeStatus, error) {
	var st mlbridge.NodeStatus
	raw, err := client.get(ctx, url)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("unexpected answer from %s: %w", url, err)
	}
	return st, nil
}
