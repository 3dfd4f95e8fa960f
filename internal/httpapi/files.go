package httpapi

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// files serves a folder read-only at /v1/files/.
type files struct {
	root *os.Root
	// hideState: the folder is the whole data folder, whose state folder
	// (.steward) is never served nor listed.
	hideState bool
}

// entry is one item of a folder's listing.
type entry struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"` // "file" or "folder"
	Size    int64     `json:"size"`
	ModTime time.Time `json:"modTime"`
}

// listing is the answer for a folder.
type listing struct {
	Path    string  `json:"path"`
	Entries []entry `json:"entries"`
}

// errLink: the path has a symbolic link in it.
var errLink = errors.New("has a symbolic link in it, which is not served")

// get answers a file's bytes (Range requests included) or a folder's
// listing; 404 for anything that is not there, not served, or not a
// regular file or folder.
func (f *files) get(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimSuffix(r.PathValue("path"), "/")
	if p == "" {
		p = "."
	}
	if p != "." && !fs.ValidPath(p) || f.hidden(p) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s: %v", p, errNotFound))
		return
	}
	info, err := f.lstat(p)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s: %v", p, err))
		return
	}
	switch {
	case info.IsDir():
		f.list(w, p)
	case info.Mode().IsRegular():
		f.serve(w, r, p, info)
	default:
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s is not a regular file or folder", p))
	}
}

// hidden reports whether p is in the state folder of a served data folder.
func (f *files) hidden(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return f.hideState && strings.EqualFold(first, message.ReservedDataPath)
}

// lstat describes p without following links, and fails when any part of
// p is a symbolic link: the root keeps every open inside the folder, but
// a link inside it could still lead into the state folder.
func (f *files) lstat(p string) (fs.FileInfo, error) {
	if p == "." {
		return f.root.Lstat(".")
	}
	prefix := ""
	var info fs.FileInfo
	for part := range strings.SplitSeq(p, "/") {
		prefix = path.Join(prefix, part)
		var err error
		if info, err = f.root.Lstat(prefix); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, errNotFound
			}
			return nil, err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return nil, errLink
		}
	}
	return info, nil
}

// serve sends the file p, checked to be the file lstat saw.
func (f *files) serve(w http.ResponseWriter, r *http.Request, p string, seen fs.FileInfo) {
	file, err := f.root.OpenFile(p, os.O_RDONLY|openFlags, 0)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s: %v", p, errNotFound))
		return
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil || !info.Mode().IsRegular() || !os.SameFile(info, seen) {
		// Changed since it was looked at (a link put in its place).
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s changed while it was opened", p))
		return
	}
	h := w.Header()
	// The files come from other nodes: never let a browser render them.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	http.ServeContent(chunked(w), r, path.Base(p), info.ModTime(), file)
}

// list answers the regular files and folders in p, by name; links and
// other kinds of files are left out, so is the state folder.
func (f *files) list(w http.ResponseWriter, p string) {
	dir, err := f.root.OpenFile(p, os.O_RDONLY|openFlags, 0)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s: %v", p, errNotFound))
		return
	}
	defer dir.Close()
	des, err := dir.ReadDir(-1)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("list %s: %v", p, err))
		return
	}
	out := listing{Path: p, Entries: []entry{}}
	for _, de := range des {
		if f.hidden(path.Join(p, de.Name())) {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // removed meanwhile
		}
		switch {
		case info.IsDir():
			out.Entries = append(out.Entries, entry{Name: de.Name(), Type: "folder", ModTime: info.ModTime().UTC()})
		case info.Mode().IsRegular():
			out.Entries = append(out.Entries, entry{Name: de.Name(), Type: "file", Size: info.Size(), ModTime: info.ModTime().UTC()})
		}
	}
	slices.SortFunc(out.Entries, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, out)
}
