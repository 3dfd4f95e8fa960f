package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stewardfleet/steward/internal/display"
	"github.com/stewardfleet/steward/internal/status"
)

// cellWidth is how many characters of output or error a table shows.
const cellWidth = 60

// table writes tab-separated rows as aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

// deliveriesTable is the table of send --wait.
func deliveriesTable(w io.Writer, records []*status.Record, withID bool) error {
	header := []string{"NODE", "STATUS", "EXIT", "OUTPUT"}
	if withID {
		header = append([]string{"MESSAGE"}, header...)
	}
	t := newTable(w, header...)
	for _, r := range records {
		node := r.Node
		if r.Reply {
			// How the reply method on the sending node handled the output.
			node = "  └ reply " + r.Method
		}
		row := []string{node, string(r.Status), exitCell(r), oneLine(summary(r), cellWidth)}
		if withID {
			row = append([]string{r.ID}, row...)
		}
		t.row(row...)
	}
	return t.flush()
}

// summary is what a table shows of a delivery: for one that did not
// succeed its error (or exit status) followed by its standard error from
// the first non-empty line on, as in "exit status 127: tree: command not
// found"; else its output, else its standard error. oneLine then keeps the
// first line.
func summary(r *status.Record) string {
	if !r.Status.Success() {
		why := r.Error
		if why == "" && r.ExitCode != nil {
			why = fmt.Sprintf("exit status %d", *r.ExitCode)
		}
		stderr := strings.TrimLeft(r.Stderr, " \t\r\n")
		switch {
		case why != "" && stderr != "":
			return why + ": " + stderr
		case why != "":
			return why
		case stderr != "":
			return stderr
		}
	}
	if r.Output != "" {
		return r.Output
	}
	return r.Stderr
}

func exitCell(r *status.Record) string {
	if r.ExitCode == nil {
		return "-"
	}
	return strconv.Itoa(*r.ExitCode)
}

// oneLine cuts s to its first non-empty line and at most width
// characters, with "…" when anything was left out. s came from a node:
// nothing in it may drive the terminal (display.Safe).
func oneLine(s string, width int) string {
	s = strings.TrimSpace(display.String(s))
	line, rest, _ := strings.Cut(s, "\n")
	line = strings.ReplaceAll(strings.TrimRight(line, "\r"), "\t", " ")
	cut := rest != ""
	if r := []rune(line); len(r) > width {
		line, cut = string(r[:width-1]), true
	}
	if cut {
		line += "…"
	}
	return line
}

// age says how long ago t was: "12s ago", "5m ago", "3h ago", "4d ago".
func age(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// writeOutput prints v as format says: YAML, else indented JSON.
func writeOutput(w io.Writer, format outputFormat, v any) error {
	if format == outputYAML {
		return writeYAML(w, v)
	}
	return writeJSON(w, v)
}

// writeYAML prints v as YAML with the keys and key order of its JSON (the
// yaml package would use Go field names): v's JSON is read back as a YAML
// document, which JSON is, and written in YAML's block style.
func writeYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	blockStyle(&doc)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write yaml: %w", err)
	}
	return nil
}

// blockStyle drops the flow style and quoting n took from JSON, so the
// encoder picks YAML's own (it still quotes what would otherwise read as
// another type: "123", "true", "").
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
