package cli

import (
	"github.com/spf13/cobra"
)

func newCompletionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion",
		Short: "Print a shell completion script (bash, zsh, fish, powershell)",
		Long: `Print a script that makes your shell complete steward's commands and
flags. See the help of each shell's subcommand for how to load it.`,
		Example: `  source <(steward completion bash)
  steward completion zsh > "${fpath[1]}/_steward"`,
		Args: groupArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var noDesc bool
	cmd.PersistentFlags().BoolVar(&noDesc, "no-descriptions", false, "leave out the descriptions of commands and flags")
	shells := []struct {
		name, long, example string
		gen                 func(root *cobra.Command) error
	}{
		{"bash", `Print the bash completion script. It needs the bash-completion package
(bash 4.1 or later).`, `  # This shell only
  source <(steward completion bash)

  # Every new shell (Linux)
  steward completion bash > /etc/bash_completion.d/steward`,
			func(root *cobra.Command) error { return root.GenBashCompletionV2(a.stdout, !noDesc) }},
		{"zsh", `Print the zsh completion script. Completion must be enabled in zsh
("autoload -U compinit; compinit" in ~/.zshrc).`, `  # This shell only
  source <(steward completion zsh)

  # Every new shell
  steward completion zsh > "${fpath[1]}/_steward"`,
			func(root *cobra.Command) error {
				if noDesc {
					return root.GenZshCompletionNoDesc(a.stdout)
				}
				return root.GenZshCompletion(a.stdout)
			}},
		{"fish", `Print the fish completion script.`, `  # This shell only
  steward completion fish | source

  # Every new shell
  steward completion fish > ~/.config/fish/completions/steward.fish`,
			func(root *cobra.Command) error { return root.GenFishCompletion(a.stdout, !noDesc) }},
		{"powershell", `Print the PowerShell completion script.`, `  # This session only
  steward completion powershell | Out-String | Invoke-Expression

  # Every new session: add the line above to your PowerShell profile`,
			func(root *cobra.Command) error {
				if noDesc {
					return root.GenPowerShellCompletion(a.stdout)
				}
				return root.GenPowerShellCompletionWithDesc(a.stdout)
			}},
	}
	for _, sh := range shells {
		cmd.AddCommand(&cobra.Command{
			Use:                   sh.name,
			Short:                 "Print the " + sh.name + " completion script",
			Long:                  sh.long,
			Example:               sh.example,
			Args:                  usageArgs(cobra.NoArgs),
			DisableFlagsInUseLine: true,
			RunE:                  func(cmd *cobra.Command, _ []string) error { return sh.gen(cmd.Root()) },
		})
	}
	return cmd
}
