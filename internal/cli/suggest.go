package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// suggestDistance is how many edits apart a misspelt command or flag may
// be from the one suggested: nodse → nodes, revok → revoke.
const suggestDistance = 2

// prepareTree readies every command of root for misspellings: a command
// that only groups others shows its help when run alone and refuses an
// unknown subcommand with a suggestion (groupArgs); cobra's own
// suggestions use suggestDistance.
func prepareTree(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.SuggestionsMinimumDistance = suggestDistance
		if c.HasSubCommands() {
			if c.Args == nil {
				c.Args = groupArgs
			}
			if !c.Runnable() {
				c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// flagError is the FlagErrorFunc of every command: a usage error that, for
// a flag cmd does not have, says what it was: a flag of the original
// steward that is not built yet (and what replaces it), a command given as
// a flag (-version), or the flag it is probably a misspelling of.
func flagError(cmd *cobra.Command, err error) error {
	var notExist *pflag.NotExistError
	if !errors.As(err, &notExist) {
		return usageError(cmd, err)
	}
	name := notExist.GetSpecifiedName()
	if notExist.GetSpecifiedShortnames() != "" {
		// One letter of a group such as -xy; the whole group is what was
		// typed.
		return usageError(cmd, fmt.Errorf("unknown flag -%s (steward's flags take two dashes, --name; the one-letter ones are -f, -o and -h)",
			notExist.GetSpecifiedShortnames()))
	}
	if what, ok := unbuiltLegacyFlags()[name]; ok {
		return usageError(cmd, fmt.Errorf("-%s is a flag of the original steward: %s", name, what))
	}
	msg := fmt.Sprintf("unknown flag --%s", name)
	if sub, _, ferr := cmd.Root().Find([]string{name}); ferr == nil && sub != cmd.Root() && sub.Name() == name {
		msg += fmt.Sprintf(" (%q is a command: steward %s)", name, name)
	} else if s := flagSuggestions(cmd, name); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean --%s?)", strings.Join(s, " or --"))
	}
	return usageError(cmd, errors.New(msg))
}

// flagSuggestions are the flags of cmd whose names are close to name,
// ignoring case, dashes and underscores (nodeName → node-name).
func flagSuggestions(cmd *cobra.Command, name string) []string {
	typed := flatName(name)
	var out []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		flat := flatName(f.Name)
		if levenshtein(typed, flat) <= suggestDistance || (len(typed) > 2 && strings.HasPrefix(flat, typed)) {
			out = append(out, f.Name)
		}
	})
	return out
}

// quoteJoin quotes each of s and joins them with sep.
func quoteJoin(s []string, sep string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, sep)
}

func flatName(s string) string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
}

// levenshtein is the number of single-character edits between a and b.
func levenshtein(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(y)]
}
