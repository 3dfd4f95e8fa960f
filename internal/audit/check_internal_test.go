package audit

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFileChecks prices the ways a writer can notice that its file
// was rotated away: the cost of each check on top of the write. Write
// does the last one on every line.
func BenchmarkFileChecks(b *testing.B) {
	line := make([]byte, 400)
	line[len(line)-1] = '\n'
	cases := []struct {
		name  string
		check func(b *testing.B, path string, f, lock *os.File, fi os.FileInfo)
	}{
		{"write", nil},
		{"fstat+write", func(b *testing.B, _ string, f, _ *os.File, _ os.FileInfo) {
			if _, err := f.Stat(); err != nil {
				b.Fatal(err)
			}
		}},
		{"stat+write", func(b *testing.B, path string, _, _ *os.File, fi os.FileInfo) {
			if st, err := os.Stat(path); err != nil || !os.SameFile(st, fi) {
				b.Fatal("not the same file", err)
			}
		}},
		{"flock+stat+write", func(b *testing.B, path string, _, lock *os.File, fi os.FileInfo) {
			if err := lockFile(lock); err != nil {
				b.Fatal(err)
			}
			if st, err := os.Stat(path); err != nil || !os.SameFile(st, fi) {
				b.Fatal("not the same file", err)
			}
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "audit.jsonl")
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				b.Fatal(err)
			}
			defer lock.Close()
			fi, err := f.Stat()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if tc.check != nil {
					tc.check(b, path, f, lock, fi)
				}
				if _, err := f.Write(line); err != nil {
					b.Fatal(err)
				}
				if tc.name == "flock+stat+write" {
					if err := unlockFile(lock); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
