package sandbox

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// Lambda's deployment package limits.
const (
	// DefaultMaxUnzippedBytes is Lambda's limit on a function's unzipped code (250 MB).
	DefaultMaxUnzippedBytes = 262144000
	// DefaultMaxFiles bounds the number of entries (files, directories, links) in a package.
	DefaultMaxFiles = 100000
	// maxLinkTarget bounds a symlink entry's target.
	maxLinkTarget = 4096
	// maxLinkHops bounds symlink chains when checking where a link leads (as the kernel's 40).
	maxLinkHops = 40
)

// ErrInvalidZip is wrapped by Unzip errors for archives that are malformed or unsafe
// (Lambda answers InvalidZipFileException).
var ErrInvalidZip = errors.New("invalid zip file")

// ErrTooLarge is wrapped by Unzip errors for archives over the limits (Lambda answers
// RequestTooLargeException / InvalidParameterValueException "Unzipped size must be
// smaller than 262144000 bytes").
var ErrTooLarge = errors.New("unzipped size exceeds limit")

// UnzipLimits bound what Unzip writes; zero fields take the defaults above.
type UnzipLimits struct {
	MaxUnzippedBytes int64
	MaxFiles         int
}

func (l UnzipLimits) withDefaults() UnzipLimits {
	if l.MaxUnzippedBytes <= 0 {
		l.MaxUnzippedBytes = DefaultMaxUnzippedBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// Unzip unpacks zipData into dir (created if missing, made 0755).
//
// It rejects, with errors wrapping ErrInvalidZip: malformed archives, entry names that are
// absolute or climb out of dir (".."), duplicate entries, special files, and symlinks that
// are absolute or lead out of the tree (following chains of the archive's own links). It
// rejects with ErrTooLarge archives with more than MaxFiles entries or whose decompressed
// bytes (counted as they are written, whatever the headers say) exceed MaxUnzippedBytes.
// Files are written 0755 when any executable bit is set in the archive, else 0644;
// directories 0755; so an unprivileged user can read the tree. All writes go through an
// os.Root, so nothing is written outside dir even if a check were missed.
//
// On error dir may hold part of the tree; the caller removes it.
func Unzip(zipData []byte, dir string, lim UnzipLimits) error {
	lim = lim.withDefaults()
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%w: %v", ErrInvalidZip, err)
	}
	if len(zr.File) > lim.MaxFiles {
		return fmt.Errorf("%w: %d entries, limit %d", ErrTooLarge, len(zr.File), lim.MaxFiles)
	}
	var declared uint64
	for _, f := range zr.File {
		declared += f.UncompressedSize64
		if declared > uint64(lim.MaxUnzippedBytes) || declared < f.UncompressedSize64 {
			return fmt.Errorf("%w: declared unzipped size over %d bytes", ErrTooLarge, lim.MaxUnzippedBytes)
		}
	}

	entries, links, err := planEntries(zr.File)
	if err != nil {
		return err
	}
	if err := checkLinks(links); err != nil {
		return err
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()

	budget := lim.MaxUnzippedBytes
	// Directories and regular files first, links last, so no entry is written through a
	// link of the archive.
	for _, e := range entries {
		if e.kind == kindDir {
			if err := root.MkdirAll(e.name, 0o755); err != nil {
				return entryErr(e.name, err)
			}
			if err := root.Chmod(e.name, 0o755); err != nil {
				return entryErr(e.name, err)
			}
			continue
		}
		n, err := writeFile(root, e, budget)
		if err != nil {
			return err
		}
		budget -= n
	}
	for _, l := range links {
		if err := mkParent(root, l.name); err != nil {
			return err
		}
		if err := root.Symlink(l.target, l.name); err != nil {
			return entryErr(l.name, err)
		}
	}
	return nil
}

type entryKind int

const (
	kindFile entryKind = iota
	kindDir
	kindLink
)

type entry struct {
	name   string // cleaned, slash-separated, local
	kind   entryKind
	exec   bool
	file   *zip.File
	target string // kindLink
}

// planEntries validates every entry's name and type and reads link targets.
func planEntries(files []*zip.File) (entries, links []entry, err error) {
	seen := make(map[string]entryKind, len(files))
	for _, f := range files {
		name, err := cleanName(f.Name)
		if err != nil {
			return nil, nil, err
		}
		mode := f.Mode()
		e := entry{name: name, file: f, exec: mode&0o111 != 0}
		switch {
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			e.kind = kindDir
		case mode&fs.ModeSymlink != 0:
			e.kind = kindLink
		case mode.IsRegular():
			e.kind = kindFile
		default:
			return nil, nil, fmt.Errorf("%w: %s: unsupported file type %v", ErrInvalidZip, f.Name, mode.Type())
		}
		if name == "." {
			if e.kind != kindDir {
				return nil, nil, fmt.Errorf("%w: %q names the root directory", ErrInvalidZip, f.Name)
			}
			continue
		}
		if prev, dup := seen[name]; dup && (prev != kindDir || e.kind != kindDir) {
			return nil, nil, fmt.Errorf("%w: duplicate entry %q", ErrInvalidZip, name)
		}
		seen[name] = e.kind
		if e.kind == kindLink {
			if e.target, err = readLinkTarget(f); err != nil {
				return nil, nil, err
			}
			links = append(links, e)
			continue
		}
		entries = append(entries, e)
	}
	// A file or link may not sit under a name that is itself a file or link.
	for name := range seen {
		for p := path.Dir(name); p != "."; p = path.Dir(p) {
			if k, ok := seen[p]; ok && k != kindDir {
				return nil, nil, fmt.Errorf("%w: %q is inside non-directory %q", ErrInvalidZip, name, p)
			}
		}
	}
	return entries, links, nil
}

// cleanName turns an archive name into a local slash-separated path, or rejects it.
func cleanName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: entry %q %s", ErrInvalidZip, name, why)
	}
	switch {
	case name == "":
		return bad("has an empty name")
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	case strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) || hasDrive(name):
		return bad("is an absolute path")
	}
	for _, part := range strings.Split(strings.ReplaceAll(name, `\`, "/"), "/") {
		if part == ".." {
			return bad("climbs out of the directory")
		}
	}
	return path.Clean(name), nil
}

// hasDrive reports a Windows drive prefix such as "C:".
func hasDrive(name string) bool {
	return len(name) >= 2 && name[1] == ':' &&
		('a' <= name[0] && name[0] <= 'z' || 'A' <= name[0] && name[0] <= 'Z')
}

func readLinkTarget(f *zip.File) (string, error) {
	if f.UncompressedSize64 > maxLinkTarget {
		return "", fmt.Errorf("%w: link %q target too long", ErrInvalidZip, f.Name)
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidZip, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrInvalidZip, f.Name, err)
	}
	target := string(b)
	switch {
	case len(b) == 0 || len(b) > maxLinkTarget:
		return "", fmt.Errorf("%w: link %q has an empty or too long target", ErrInvalidZip, f.Name)
	case strings.ContainsRune(target, 0):
		return "", fmt.Errorf("%w: link %q target contains a NUL byte", ErrInvalidZip, f.Name)
	case strings.HasPrefix(target, "/"):
		return "", fmt.Errorf("%w: link %q points to absolute path %q", ErrInvalidZip, f.Name, target)
	}
	return target, nil
}

// checkLinks resolves every link as the kernel would (following the archive's own links,
// ".." taken physically) and rejects any that leads out of the tree at any step.
func checkLinks(links []entry) error {
	targets := make(map[string]string, len(links))
	for _, l := range links {
		targets[l.name] = l.target
	}
	for _, l := range links {
		hops := 0
		parent := splitPath(path.Dir(l.name))
		if _, err := resolve(parent, l.target, targets, &hops); err != nil {
			return fmt.Errorf("%w: link %q -> %q: %v", ErrInvalidZip, l.name, l.target, err)
		}
	}
	return nil
}

var errEscapes = errors.New("leads out of the tree")

// resolve walks target from dir (components under the root), substituting links found in
// targets, and returns the components reached. Missing names are taken literally.
func resolve(dir []string, target string, targets map[string]string, hops *int) ([]string, error) {
	if strings.HasPrefix(target, "/") {
		return nil, errEscapes
	}
	cur := append([]string(nil), dir...)
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, errEscapes
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, part)
		t, isLink := targets[strings.Join(cur, "/")]
		if !isLink {
			continue
		}
		if *hops++; *hops > maxLinkHops {
			return nil, errors.New("too many levels of symbolic links")
		}
		next, err := resolve(cur[:len(cur)-1], t, targets, hops)
		if err != nil {
			return nil, err
		}
		cur = next
	}
	return cur, nil
}

func splitPath(p string) []string {
	if p == "." || p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func mkParent(root *os.Root, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return entryErr(name, err)
		}
	}
	return nil
}

// writeFile writes a regular entry, failing with ErrTooLarge once more than budget bytes
// have been decompressed. It returns the bytes written.
func writeFile(root *os.Root, e entry, budget int64) (int64, error) {
	if err := mkParent(root, e.name); err != nil {
		return 0, err
	}
	perm := os.FileMode(0o644)
	if e.exec {
		perm = 0o755
	}
	rc, err := e.file.Open()
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", ErrInvalidZip, e.name, err)
	}
	defer rc.Close()
	out, err := root.OpenFile(e.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, entryErr(e.name, err)
	}
	n, copyErr := io.Copy(out, &readErrMarker{r: io.LimitReader(rc, budget+1)})
	chmodErr := out.Chmod(perm) // exact mode whatever the umask
	closeErr := out.Close()
	var rerr *readError
	switch {
	case errors.As(copyErr, &rerr):
		return n, fmt.Errorf("%w: %s: %v", ErrInvalidZip, e.name, rerr.err)
	case copyErr != nil:
		return n, fmt.Errorf("write %s: %w", e.name, copyErr)
	case n > budget:
		return n, fmt.Errorf("%w: more than %d bytes unzipped at %s", ErrTooLarge, budget, e.name)
	case chmodErr != nil:
		return n, fmt.Errorf("chmod %s: %w", e.name, chmodErr)
	case closeErr != nil:
		return n, fmt.Errorf("write %s: %w", e.name, closeErr)
	}
	return n, nil
}

// readError marks errors that come from decompression rather than from writing.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

type readErrMarker struct{ r io.Reader }

func (m *readErrMarker) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = &readError{err}
	}
	return n, err
}

// entryErr classifies a failure to create an entry: resource problems of the host stay
// plain errors, anything else means the archive's layout cannot be unpacked.
func entryErr(name string, err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("unzip %s: %w", name, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrInvalidZip, name, err)
}
