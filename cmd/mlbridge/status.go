package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlbridge/mlbridge"
)

func newStatusCmd() *cobra.Command {
	var addr string
	var asJSON bool
	var node nodeClient
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the workers and ops of a running 'mlbridge serve'",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url, err := nodeURL("addr", addr, "/v1/status")
			if err != nil {
				return err
			}
			raw, err := node.get(cmd.Context(), url)
			if err != nil {
				return fmt.Errorf("%w (start one with `mlbridge serve`)", err)
			}
			var st mlbridge.PoolStats
			if err := json.Unmarshal(raw, &st); err != nil {
				// Checked with --json too: something else on the port (a web page) must not
				// reach a script's JSON parser with exit code 0.
				return fmt.Errorf("unexpected answer from %s, not an mlbridge node's status: %w", url, err)
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(raw)
				return err
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultAdminAddr, "address of the node: host:port, http://host:port or https://host:port")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON")
	node.flags(cmd.Flags())
	return cmd
}

func printStatus(w io.Writer, st mlbridge.PoolStats) {
	health := "healthy"
	if !st.Healthy {
		health = "UNHEALTHY"
		if st.Error != "" {
			health += ": " + st.Error
		}
	}
	fmt.Fprintf(w, "pool: %s — %d/%d ready, %d waiting, %d crashes, %d recycles, %d retries, %d overloaded\n\n",
		health, st.Ready, st.Size, st.Waiting, st.Crashes, st.Recycles, st.Retries, st.Overloaded)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "SLOT\tPID\tSTATE\tIN-FLIGHT\tSERVED\tERRORS\tRSS MiB\tUPTIME\tRESTARTS\t")
	for _, wk := range st.Workers {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%d\t%d\t%d\t%.1f\t%s\t%d\t\n", wk.Slot, wk.Pid, wk.State, wk.InFlight,
			wk.Served, wk.Errors, float64(wk.RSSBytes)/(1<<20), wk.Uptime.Round(time.Second), wk.Restarts)
	}
	tw.Flush()
	printMigration(w, st)
	if len(st.Ops) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	// The percentiles are within 3.1% of a measured duration (internal/histogram).
	fmt.Fprintln(tw, "OP\tCALLS\tERRORS\tP50 µs\tP90 µs\tP99 µs\t")
	for _, op := range st.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t\n", op.Op, op.Count, op.Errors, op.P50us, op.P90us, op.P99us)
	}
	tw.Flush()
}

// printMigration prints the migration metrics: Go calls per mode and per API, and how the
// Python handlers serve them.
func printMigration(w io.Writer, st mlbridge.PoolStats) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "calls by mode: %s\n", countsLine(st.ByMode))
	fmt.Fprintf(w, "calls by API:  %s\n", countsLine(st.ByAPI))
	h := st.Handlers
	fmt.Fprintf(w, "handlers: %.0f%% async over %d ops; calls by kind: %s\n", 100*h.AsyncShare, len(h.Modes), countsLine(h.Kinds))
	var mixed []string
	for _, op := range slices.Sorted(maps.Keys(h.Modes)) {
		if h.Modes[op] == mlbridge.KindMixed {
			mixed = append(mixed, op)
		}
	}
	if len(mixed) > 0 {
		fmt.Fprintf(w, "switching (workers disagree): %s\n", strings.Join(mixed, ", "))
	}
}

// countText renders one count: "12 (1 failed)".
func countText(c mlbridge.CallCounts) string {
	if c.Errors > 0 {
		return fmt.Sprintf("%d (%d failed)", c.Calls, c.Errors)
	}
	return fmt.Sprint(c.Calls)
}

// countsLine renders counts sorted by key: "call 12 (1 failed), stream 3".
func countsLine[K ~string](m map[K]mlbridge.CallCounts) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, string(k)+" "+countText(m[k]))
	}
	return strings.Join(parts, ", ")
}
