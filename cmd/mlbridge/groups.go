package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// refuseUnknownSubcommands makes every command that only groups others (store, python,
// completion) fail on an argument that names none of them. Cobra checks that only at the
// root: below it, `mlbridge store chekc` printed store's help and exited 0, so a script's typo
// looked like success. Without arguments a group still prints its help and exits 0.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if !c.HasParent() || c.Runnable() || !c.HasSubCommands() {
		return
	}
	c.SuggestionsMinimumDistance = 2 // as cobra's default at the root
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return pflag.ErrHelp // cobra prints the help and returns no error
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
		}
		return fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())
	}
	// Runnable, so cobra validates Args; Args above answers every case before this runs.
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}
