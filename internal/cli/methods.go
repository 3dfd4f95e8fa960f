package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/methods"
)

func newMethodsCmd(a *app) *cobra.Command {
	var output *outputFormat
	cmd := &cobra.Command{
		Use:   "methods",
		Short: "List the methods messages can name",
		Long: `List the methods an operator can put in a message's "method" or
"replyMethod": name, kind and summary. Kind "command" runs on request and
has a status; "reply" handles results on the sender's node (and can also be
sent as a command); "event" is fire-and-forget traffic. Methods only steward
itself sends are not listed.`,
		Example: `  steward methods
  steward methods -o json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			type row struct {
				Name    string   `json:"name"`
				Aliases []string `json:"aliases,omitempty"`
				Kind    string   `json:"kind"`
				Summary string   `json:"summary"`
			}
			var rows []row
			for _, s := range methods.Default().Specs() {
				if s.Internal {
					continue
				}
				rows = append(rows, row{Name: s.Name, Aliases: s.Aliases, Kind: kindName(s.Kind), Summary: s.Summary})
			}
			if output.structured() {
				return writeOutput(a.stdout, *output, rows)
			}
			t := newTable(a.stdout, "NAME", "KIND", "SUMMARY")
			for _, r := range rows {
				name := r.Name
				if len(r.Aliases) > 0 {
					name += " (" + strings.Join(r.Aliases, ", ") + ")"
				}
				t.row(name, r.Kind, r.Summary)
			}
			return t.flush()
		},
	}
	output = addOutputFlag(cmd)
	return cmd
}

// kindName is how `steward methods` names a methods.Kind.
func kindName(k methods.Kind) string {
	switch k {
	case methods.Command:
		return "command"
	case methods.ReplyHandler:
		return "reply"
	case methods.Event:
		return "event"
	}
	return "unknown"
}
