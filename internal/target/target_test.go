package target

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardfleet/steward/internal/registry"
)

func TestParseLabels(t *testing.T) {
	tests := []struct {
		in   string
		want string
		bad  string
	}{
		{in: "", want: ""},
		{in: "role=db", want: "role=db"},
		{in: " site=north , role=db ", want: "role=db,site=north"},
		{in: "rack=r1.2,os_ver=12-3", want: "os_ver=12-3,rack=r1.2"},
		{in: "role", bad: "want key=value"},
		{in: "role=", bad: "empty value"},
		{in: "=db", bad: "empty key"},
		{in: "role=d b", bad: "may hold only"},
		{in: "role=db,role=web", bad: "given twice"},
		{in: "ro*le=db", bad: "may hold only"},
		{in: "role=" + strings.Repeat("x", MaxLabelLen+1), bad: "longer than"},
	}
	for _, tt := range tests {
		l, err := ParseLabels(tt.in)
		if tt.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tt.bad) || !errors.Is(err, ErrBadLabel) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.bad)
			}
			continue
		}
		if err != nil || l.String() != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.in, l.String(), err, tt.want)
		}
	}
}

func TestIsExpr(t *testing.T) {
	for in, want := range map[string]bool{"*": true, "role=db": true, "a=b,c=d": true, "ship1": false, "ship-1_x": false} {
		if IsExpr(in) != want {
			t.Errorf("IsExpr(%q) = %v", in, !want)
		}
	}
}

func TestResolve(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &Fleet{Now: now, Expiry: 24 * time.Hour, Nodes: []*registry.Node{
		{Name: "db2", LastSeen: now.Add(-time.Hour), StoppedAt: now.Add(-time.Hour), Labels: map[string]string{"role": "db", "site": "south"}},
		{Name: "db1", LastSeen: now.Add(-time.Second), Labels: map[string]string{"role": "db", "site": "north"}},
		{Name: "web1", LastSeen: now.Add(-3 * time.Hour), Labels: map[string]string{"role": "web", "site": "north"}},
		{Name: "old", LastSeen: now.Add(-48 * time.Hour), Labels: map[string]string{"role": "db"}},
		{Name: "bare", LastSeen: now.Add(-time.Second)},
	}}
	tests := []struct {
		name    string
		targets []string
		want    []string
		err     error
	}{
		{"names only", []string{"x", "y", "x"}, []string{"x", "y"}, nil},
		{"star keeps offline and stopped, not expired", []string{"*"}, []string{"bare", "db1", "db2", "web1"}, nil},
		{"selector", []string{"role=db"}, []string{"db1", "db2"}, nil},
		{"all labels must match", []string{"role=db,site=north"}, []string{"db1"}, nil},
		{"several are OR", []string{"site=south", "role=web"}, []string{"db2", "web1"}, nil},
		{"names first, no duplicates", []string{"web1", "site=north"}, []string{"web1", "db1"}, nil},
		{"no match", []string{"role=cache"}, nil, ErrNoMatch},
		{"expired only", []string{"role=db,site=east"}, nil, ErrNoMatch},
		{"bad selector", []string{"role=d b"}, nil, ErrBadLabel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.Resolve(tt.targets)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	_, err := f.Resolve([]string{"role=cache"})
	if want := "target role=cache matches no node of the registry (4 nodes; 1 more not seen for over 24h0m0s are left out)"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}
