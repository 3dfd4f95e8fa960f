// Package datafolder confines a node's file writes to its data folder.
//
// Every path that comes from a message goes through ReplyPath, which
// rejects ".." that would leave the folder, and every write goes through an
// os.Root, which also refuses symbolic links that point outside it; a write
// through a symbolic link inside the folder is refused too (steward's
// state folder is inside it). The
// layout of reply files is
//
//	<data folder>/<directory>/<source node>/<fileName>
//
// where an absolute directory is placed under the data folder too.
package datafolder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/stewardfleet/steward/internal/message"
)

// Folder is an open data folder. Writes to one file take turns, so
// appends never interleave; writes to different files run at once.
type Folder struct {
	dir  string
	root *os.Root
	mu   sync.Mutex // guards root and dirs
	// dirs holds folders written to recently, open (see openDir).
	dirs map[string]*os.Root

	filesMu sync.Mutex
	files   map[string]*fileTurn // the files being written, by path
}

// fileTurn is the lock of one file while writers use it.
type fileTurn struct {
	sync.Mutex
	users int
}

// Open creates dir if needed and opens it as a confined root.
func Open(dir string) (*Folder, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open data folder: %w", err)
	}
	return &Folder{dir: abs, root: root, dirs: map[string]*os.Root{}, files: map[string]*fileTurn{}}, nil
}

// Dir is the folder's absolute path.
func (f *Folder) Dir() string { return f.dir }

// Close releases the folder.
func (f *Folder) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeDirs()
	return f.root.Close()
}

// ReplyPath is the relative path a reply from node is written to. It
// fails with message.ErrBadPath for a directory or file name that would
// leave the data folder.
func ReplyPath(directory, node, fileName string) (string, error) {
	dir, err := message.CleanDirectory(directory)
	if err != nil {
		return "", err
	}
	if err := message.ValidFileName(fileName); err != nil {
		return "", err
	}
	if fileName == "" {
		return "", fmt.Errorf("no fileName: %w", message.ErrBadPath)
	}
	if err := message.ValidNodeName(node); err != nil {
		return "", fmt.Errorf("source node: %w", err)
	}
	return path.Join(dir, node, fileName), nil
}

// Write writes data to rel (a clean relative path), creating folders as
// needed; with appendMode it appends, otherwise it replaces the file. It
// returns the absolute path written.
func (f *Folder) Write(rel string, data []byte, appendMode bool) (string, error) {
	defer f.take(rel)()
	flags := os.O_WRONLY | os.O_CREATE
	if appendMode {
		flags |= os.O_APPEND
	} else {
		flags |= os.O_TRUNC
	}
	file, err := f.open(rel, flags)
	if err != nil {
		return "", err
	}
	if _, err := file.Write(data); err != nil {
		file.Close()
		return "", fmt.Errorf("write %s: %w", rel, err)
	}
	if err := file.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", rel, err)
	}
	return filepath.Join(f.dir, filepath.FromSlash(rel)), nil
}

// Append appends data to rel like Write, so that a run that may have
// appended it before (and died before it could say so) does not append it
// twice. at, if not nil, is called with the offset the data goes to before
// it is written (the caller records it durably; an error writes nothing).
// prior is the offset an earlier run was given (-1: none): if the file
// holds data there, nothing is written; if it holds the start of data and
// ends there (that run died while writing), the rest is written. wrote
// reports whether anything was written.
func (f *Folder) Append(rel string, data []byte, prior int64, at func(offset int64) error) (abs string, wrote bool, err error) {
	defer f.take(rel)()
	file, err := f.open(rel, os.O_RDWR|os.O_CREATE|os.O_APPEND)
	if err != nil {
		return "", false, err
	}
	defer file.Close()
	abs = filepath.Join(f.dir, filepath.FromSlash(rel))
	st, err := file.Stat()
	if err != nil {
		return "", false, fmt.Errorf("stat %s: %w", rel, err)
	}
	size := st.Size()
	note := at
	if prior >= 0 && prior <= size && len(data) > 0 {
		have := make([]byte, min(size-prior, int64(len(data))))
		if _, err := file.ReadAt(have, prior); err != nil {
			return "", false, fmt.Errorf("read %s: %w", rel, err)
		}
		switch {
		case len(have) == len(data) && string(have) == string(data):
			return abs, false, nil // the earlier run wrote it all
		case prior+int64(len(have)) == size && string(have) == string(data[:len(have)]):
			// It died while writing: the rest, where the data still
			// starts at prior.
			data, note = data[len(have):], nil
		}
	}
	if note != nil {
		if err := note(size); err != nil {
			return "", false, err
		}
	}
	if _, err := file.Write(data); err != nil {
		return "", false, fmt.Errorf("write %s: %w", rel, err)
	}
	if err := file.Close(); err != nil {
		return "", false, fmt.Errorf("close %s: %w", rel, err)
	}
	return abs, true, nil
}

// take waits for rel's turn and returns the function that ends it.
func (f *Folder) take(rel string) (done func()) {
	f.filesMu.Lock()
	t := f.files[rel]
	if t == nil {
		t = &fileTurn{}
		f.files[rel] = t
	}
	t.users++
	f.filesMu.Unlock()
	t.Lock()
	return func() {
		t.Unlock()
		f.filesMu.Lock()
		if t.users--; t.users == 0 {
			delete(f.files, rel)
		}
		f.filesMu.Unlock()
	}
}

// open opens rel with flags, making its folder if needed and refusing a
// symbolic link. The file stays usable when its folder is closed later.
func (f *Folder) open(rel string, flags int) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir, name := path.Split(rel)
	dir = path.Clean(dir)
	d, err := f.openDir(dir)
	if err != nil {
		return nil, err
	}
	if st, err := d.Lstat(name); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a symbolic link: %w", rel, message.ErrBadPath)
	}
	file, err := d.OpenFile(name, flags, 0o644)
	if errors.Is(err, fs.ErrNotExist) && dir != "." {
		// The folder was removed since it was opened: make it again.
		f.forgetDir(dir)
		if d, err = f.openDir(dir); err != nil {
			return nil, err
		}
		file, err = d.OpenFile(name, flags, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", rel, confined(err))
	}
	return file, nil
}

// maxOpenDirs bounds the folders kept open.
const maxOpenDirs = 512

// openDir returns the folder dir (made if needed) as a root of its own,
// kept open so the next write there opens its file with one call. The
// folder is opened through the data folder's root, so it is inside it; an
// open folder stays the same folder even if its path is changed later.
// The caller holds mu.
func (f *Folder) openDir(dir string) (*os.Root, error) {
	if dir == "." {
		return f.root, nil
	}
	if d, ok := f.dirs[dir]; ok {
		return d, nil
	}
	if err := f.noLinks(dir); err != nil {
		return nil, err
	}
	if err := f.root.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, confined(err))
	}
	d, err := f.root.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, confined(err))
	}
	if len(f.dirs) >= maxOpenDirs {
		f.closeDirs()
	}
	f.dirs[dir] = d
	return d, nil
}

// noLinks refuses a folder path with a symbolic link in it. The root keeps
// every write inside the data folder, but steward's state folder is inside
// it too: a link planted in the data folder must not lead a reply into the
// ledger. (Messages cannot make links; a local user or a command can.)
func (f *Folder) noLinks(dir string) error {
	p := ""
	for part := range strings.SplitSeq(dir, "/") {
		p = path.Join(p, part)
		st, err := f.root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the rest is made by MkdirAll
		}
		if err != nil {
			return fmt.Errorf("check %s: %w", p, confined(err))
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link: %w", p, message.ErrBadPath)
		}
	}
	return nil
}

func (f *Folder) forgetDir(dir string) {
	if d, ok := f.dirs[dir]; ok {
		d.Close()
		delete(f.dirs, dir)
	}
}

func (f *Folder) closeDirs() {
	for dir, d := range f.dirs {
		d.Close()
		delete(f.dirs, dir)
	}
}

// confined marks errors from os.Root that mean "this path escapes".
func confined(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent" {
		return fmt.Errorf("%w: %w", message.ErrBadPath, err)
	}
	return err
}
