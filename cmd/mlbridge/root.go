package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// defaultBridge needs no ML framework: it is the bridge the CLI, demo and benchmarks use
// unless told otherwise.
const defaultBridge = "mlbridge_worker.echo:EchoBridge"

type globalFlags struct {
	python  string
	bridge  string
	verbose bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "mlbridge",
		Short:         "Use Python ML frameworks from Go through supervised worker processes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.python, "python", "", "Python interpreter (default: $MLBRIDGE_PYTHON, ./.venv, python3)")
	root.PersistentFlags().StringVar(&g.bridge, "bridge", defaultBridge, "Python bridge class, module:Class")
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log worker stderr and lifecycle events")
	root.AddCommand(newCallCmd(g), newBenchCmd(g), newServeCmd(g), newStatusCmd(), newDoctorCmd(g), newNewBridgeCmd(), newMigrateCmd())
	root.AddCommand(newStoreCmd())
	root.AddCommand(newPythonCmd(g))
	root.InitDefaultCompletionCmd() // now, so that refuseUnknownSubcommands sees it
	refuseUnknownSubcommands(root)
	return root
}

func (g *globalFlags) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
