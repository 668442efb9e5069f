package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge/store"
)

func newStoreCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Check or recover a definition store file (store.OpenBolt)",
	}
	cmd.PersistentFlags().StringVar(&path, "path", "", "the store file (required)")
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	_ = cmd.MarkPersistentFlagRequired("path")

	check := &cobra.Command{
		Use:   "check",
		Short: "Verify a store file as the host does at start-up, changing nothing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := store.Check(cmd.Context(), path)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d definitions, %d bytes\n", rep.Path, rep.Definitions, rep.Bytes)
			return nil
		},
	}
	recover := &cobra.Command{
		Use:   "recover",
		Short: "Copy the readable definitions of a damaged store file into a new one, keeping the damaged file",
		Long: `Checks the file; if it is damaged, copies every definition that can still be read (with its
version) into a new file at --path, and renames the damaged file to <path>.damaged-<UTC time>.
A healthy file is left as it is. Stop the host that uses the file first.

What is lost: records that no longer decode (listed), and every record on a page too damaged
to read (not listed: nothing names them). When bbolt's index itself is damaged the file is read
page by page: a definition deleted before the damage may then come back, and one whose page
was destroyed may come back in an older version; check those the report lists.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := store.Recover(cmd.Context(), path)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rep)
			}
			w := cmd.OutOrStdout()
			if rep.Healthy {
				fmt.Fprintf(w, "%s passed the check: nothing to recover\n", rep.Path)
				return nil
			}
			fmt.Fprintf(w, "%s was damaged: %s\n", rep.Path, rep.Damage)
			fmt.Fprintf(w, "recovered %d definitions (read by %s) into %s\n", len(rep.Recovered), rep.Method, rep.Path)
			if len(rep.Lost) > 0 {
				fmt.Fprintf(w, "lost (unreadable records): %s\n", strings.Join(rep.Lost, ", "))
			}
			if rep.Method == store.MethodPageScan {
				fmt.Fprintln(w, "read page by page: definitions deleted earlier may be back, and some may be older versions")
			}
			fmt.Fprintf(w, "the damaged file is kept as %s\n", rep.Backup)
			return nil
		},
	}
	cmd.AddCommand(check, recover)
	return cmd
}
