package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/methods"
	"github.com/stewardfleet/steward/internal/policy"
)

func newPolicyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "policy",
		Short:   "Check what a node's authorisation policy allows",
		Example: `  steward policy check --policy-file etc/policy.json --from central --method REQCliCommand -- systemctl status nginx`,
	}
	cmd.AddCommand(newPolicyCheckCmd(a))
	return cmd
}

func newPolicyCheckCmd(a *app) *cobra.Command {
	var file, from, method string
	cmd := &cobra.Command{
		Use:   "check --policy-file FILE --from NODE --method METHOD [-- ARGS...]",
		Short: "Say whether a policy allows a request, and which rule decides",
		Long: `Decide a request as a node with this policy would: print "allow" or "deny"
and the rule that decided (or that none matched: default-deny). The exit code
is 0 when allowed and 1 when denied. The arguments after -- are the
request's methodArgs (for REQCliCommand, the command line).`,
		Example: `  steward policy check --policy-file etc/policy.json --from central --method REQCliCommand -- systemctl status nginx
  steward policy check --policy-file etc/policy.json --from ship2 --method REQPing`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" || from == "" || method == "" {
				return usageError(cmd, errors.New("--policy-file, --from and --method are required"))
			}
			p, err := policy.Load(file)
			if err != nil {
				return exitError(ExitUsage, err)
			}
			if canonical, _, ok := methods.Default().Resolve(method); ok {
				method = canonical
			}
			d := p.Decide(from, method, args)
			verdict := "deny"
			if d.Allowed {
				verdict = "allow"
			}
			fmt.Fprintf(a.stdout, "%s: %s\n", verdict, d.Reason)
			if !d.Allowed {
				return exitError(ExitFailed, errors.New("denied"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "policy-file", "", "the policy (JSON)")
	cmd.Flags().StringVar(&from, "from", "", "the sending node")
	cmd.Flags().StringVar(&method, "method", "", "the method")
	return cmd
}
