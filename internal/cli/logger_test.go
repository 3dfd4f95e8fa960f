package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLoggerFormat(t *testing.T) {
	for _, format := range []string{"text", "json", "JSON"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			newLogger(&b, "info", format).Info("done", "msg_id", "m1")
			newLogger(&b, "info", format).Debug("hidden")
			line := strings.TrimSpace(b.String())
			if strings.Contains(line, "hidden") || strings.Contains(line, "\n") {
				t.Fatalf("want one info line, got %q", line)
			}
			var rec map[string]any
			isJSON := json.Unmarshal([]byte(line), &rec) == nil
			if isJSON != strings.EqualFold(format, "json") {
				t.Fatalf("format %s: got %q", format, line)
			}
			if isJSON && rec["msg_id"] != "m1" || !isJSON && !strings.Contains(line, "msg_id=m1") {
				t.Errorf("no msg_id in %q", line)
			}
		})
	}
}
