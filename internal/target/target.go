// Package target says which nodes a message goes to when its targets are
// not only node names: "*" (every node of the registry) and label
// selectors ("role=db,site=north": every node whose labels hold all of
// these). Such target expressions are resolved once, when a message is
// sent, against the node registry as it is then; the message then carries
// the node names they matched, so what was sent never changes later.
//
// Guarantees:
//   - A node name can never be read as an expression (names hold no '*'
//     or '='), so plain names keep their meaning.
//   - Resolve never returns a node the registry hides as expired, and
//     returns names in a stable order (sorted, without duplicates).
//   - Labels and selectors hold only letters, digits, '-', '_' and '.'
//     around '=' and ',': they cannot smuggle subject wildcards or spaces.
package target

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
)

// All is the expression for every node of the registry.
const All = "*"

// MaxLabelLen bounds a label's key and its value.
const MaxLabelLen = 63

// MaxLabels bounds how many labels a node may have.
const MaxLabels = 64

// DefaultExpiry is how long a node may go unseen before the registry's
// readers (steward nodes, target resolution) leave it out.
const DefaultExpiry = 30 * 24 * time.Hour

// Sentinel errors of package target.
var (
	// ErrBadLabel: a label or selector is not key=value pairs of the
	// allowed characters.
	ErrBadLabel = errors.New("invalid label")
	// ErrNoMatch: an expression matched no node of the registry.
	ErrNoMatch = errors.New("no node matches")
)

// Labels are a node's labels: key → value.
type Labels map[string]string

// String writes labels as ParseLabels reads them, sorted by key:
// "role=db,site=north"; empty labels are "".
func (l Labels) String() string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// labelChars reports whether s holds only letters, digits, '-', '_', '.'.
func labelChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// ValidLabel checks one label.
func ValidLabel(key, value string) error {
	for _, p := range []struct{ what, s string }{{"key", key}, {"value", value}} {
		switch {
		case p.s == "":
			return fmt.Errorf("label %s=%s: empty %s: %w", key, value, p.what, ErrBadLabel)
		case len(p.s) > MaxLabelLen:
			return fmt.Errorf("label %.20q…: %s longer than %d characters: %w", key, p.what, MaxLabelLen, ErrBadLabel)
		case !labelChars(p.s):
			return fmt.Errorf("label %s=%s: the %s may hold only letters, digits, '-', '_' and '.': %w", key, value, p.what, ErrBadLabel)
		}
	}
	return nil
}

// Validate checks every label.
func (l Labels) Validate() error {
	if len(l) > MaxLabels {
		return fmt.Errorf("%d labels, at most %d are allowed: %w", len(l), MaxLabels, ErrBadLabel)
	}
	for _, k := range slices.Sorted(maps.Keys(l)) {
		if err := ValidLabel(k, l[k]); err != nil {
			return err
		}
	}
	return nil
}

// ParseLabels reads "key=value,key=value" (spaces around the parts are
// ignored; "" is no labels). A key given twice is an error.
func ParseLabels(s string) (Labels, error) {
	l := Labels{}
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return nil, fmt.Errorf("%q: want key=value: %w", strings.TrimSpace(part), ErrBadLabel)
		}
		if err := ValidLabel(k, v); err != nil {
			return nil, err
		}
		if _, dup := l[k]; dup {
			return nil, fmt.Errorf("label %s given twice: %w", k, ErrBadLabel)
		}
		l[k] = v
	}
	return l, l.Validate()
}

// IsExpr reports whether a target is an expression ("*" or a label
// selector) rather than a node name.
func IsExpr(t string) bool { return t == All || strings.Contains(t, "=") }

// HasExpr reports whether any of targets is an expression.
func HasExpr(targets []string) bool { return slices.ContainsFunc(targets, IsExpr) }

// Selector is a parsed expression: nil labels match every node ("*").
type Selector struct {
	expr   string
	labels Labels
}

// ParseSelector reads "*" or "key=value[,key=value…]".
func ParseSelector(expr string) (Selector, error) {
	if strings.TrimSpace(expr) == All {
		return Selector{expr: All}, nil
	}
	l, err := ParseLabels(expr)
	if err != nil {
		return Selector{}, fmt.Errorf("target %q: %w", expr, err)
	}
	if len(l) == 0 {
		return Selector{}, fmt.Errorf("target %q is empty: want * or key=value[,key=value]: %w", expr, ErrBadLabel)
	}
	return Selector{expr: l.String(), labels: l}, nil
}

// String is the selector as ParseSelector reads it (normalised).
func (s Selector) String() string { return s.expr }

// Matches reports whether a node with labels l is selected.
func (s Selector) Matches(l map[string]string) bool {
	for k, v := range s.labels {
		if got, ok := l[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Fleet is the registry as resolution sees it: the nodes, the broker's
// time and how long a node may go unseen before it is left out.
type Fleet struct {
	Nodes []*registry.Node
	// Now is the broker's time, against which LastSeen was stored.
	Now time.Time
	// Expiry leaves out nodes not seen for longer (0: keep every node).
	Expiry time.Duration
}

// Live returns the nodes that are not expired, sorted by name. Offline
// and stopped nodes are kept: their messages wait for them.
func (f *Fleet) Live() []*registry.Node {
	var out []*registry.Node
	for _, n := range f.Nodes {
		if f.Expiry > 0 && f.Now.Sub(n.LastSeen) > f.Expiry {
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *registry.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Resolve replaces the expressions among targets by the names of the
// nodes they select. Names stay first, in their order; the selected nodes
// follow, sorted, without duplicates. When the expressions together select
// no node, the error wraps ErrNoMatch and says how many nodes the registry
// has.
func (f *Fleet) Resolve(targets []string) ([]string, error) {
	var names, exprs []string
	var sels []Selector
	for _, t := range targets {
		if !IsExpr(t) {
			if !slices.Contains(names, t) {
				names = append(names, t)
			}
			continue
		}
		s, err := ParseSelector(t)
		if err != nil {
			return nil, err
		}
		sels = append(sels, s)
		exprs = append(exprs, s.String())
	}
	if len(sels) == 0 {
		return names, nil
	}
	live := f.Live()
	matched := 0
	for _, n := range live {
		for _, s := range sels {
			if s.Matches(n.Labels) {
				matched++
				if !slices.Contains(names, n.Name) {
					names = append(names, n.Name)
				}
				break
			}
		}
	}
	if matched == 0 {
		hidden := ""
		if d := len(f.Nodes) - len(live); d > 0 {
			hidden = fmt.Sprintf("; %d more not seen for over %s are left out", d, f.Expiry)
		}
		return nil, fmt.Errorf("target %s matches no node of the registry (%d nodes%s): %w",
			strings.Join(exprs, " or "), len(live), hidden, ErrNoMatch)
	}
	return names, nil
}

// Lister reads the registry: its nodes and the broker's time.
type Lister func(ctx context.Context) ([]*registry.Node, time.Time, error)

// Resolver returns a function that resolves targets against the registry
// as list reads it at the function's first use with expressions (once:
// every message of one batch sees the same fleet), leaving out nodes not
// seen for longer than expiry. It is not safe for concurrent use.
func Resolver(list Lister, expiry time.Duration) func(ctx context.Context, targets []string) ([]string, error) {
	var f *Fleet
	return func(ctx context.Context, targets []string) ([]string, error) {
		if !HasExpr(targets) {
			return targets, nil
		}
		if f == nil {
			nodes, now, err := list(ctx)
			if err != nil {
				return nil, fmt.Errorf("read the node registry: %w", err)
			}
			f = &Fleet{Nodes: nodes, Now: now, Expiry: expiry}
		}
		return f.Resolve(targets)
	}
}
