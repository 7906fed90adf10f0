package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shoal-dev/shoal/internal/randid"
)

// A journal is a directory of segment files, usage-<n>.jnl, each a sequence
// of lines "<id>\t<subject>\t<event JSON>\n". The writer appends to the
// newest segment with one write(2) per event, so a line is either wholly in
// the file or not at all when the process is killed; a new writer always
// starts a new segment. The publisher reads segments oldest first and deletes
// each once it is published and a newer one exists.

const (
	segPrefix = "usage-"
	segSuffix = ".jnl"
)

func segName(n uint64) string { return fmt.Sprintf("%s%012d%s", segPrefix, n, segSuffix) }

// posName is the position file of segment n: 8 bytes of how much of it is
// published, 8 bytes of the end of the range being published.
func posName(n uint64) string { return fmt.Sprintf("%s%012d.pos", segPrefix, n) }

// maxMessage bounds the size of one ledger message (NATS allows 1 MB).
const maxMessage = 512 << 10

// journalID returns the id of the journal in dir, creating it on first use.
// Message ids start with it, so two journals never share one.
func journalID(dir string) (string, error) {
	file := filepath.Join(dir, "journal.id")
	if b, err := os.ReadFile(file); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	id := randid.Hex(8)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, nil
}

// segments lists the segment numbers in dir, oldest first.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// writer appends lines to the newest segment. A segment file is a header
// of 8 bytes — the length of the data committed so far, little-endian — and
// the data after it. The writer maps the file into memory: appending a line
// is a copy into the mapping and an atomic store of the new length, no
// system call, and what is in the mapping is in the page cache, which
// outlives the process. A line copied but not yet committed when the
// process dies is beyond the committed length and ignored.
//
// Concurrency: mu guards every field; readers read the file, not the mapping.
type writer struct {
	dir     string
	maxSize int64

	mu   sync.Mutex
	f    *os.File
	mem  []byte // the mapping of f: header, then maxSize bytes of data
	seg  uint64
	size int64
}

const headerSize = 8

func openWriter(dir string, maxSize int64) (*writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ledger: journal: %w", err)
	}
	segs, err := segments(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: journal: %w", err)
	}
	w := &writer{dir: dir, maxSize: maxSize}
	if len(segs) > 0 {
		w.seg = segs[len(segs)-1]
	}
	if err := w.rotateLocked(); err != nil {
		return nil, err
	}
	return w, nil
}

// rotateLocked starts the next segment. A segment that cannot be made whole
// (a full disk) is an error, and the current segment stays as it was, mapped
// and usable for what still fits; the next append tries again.
func (w *writer) rotateLocked() error {
	next := w.seg + 1
	var f *os.File
	for {
		var err error
		f, err = os.OpenFile(filepath.Join(w.dir, segName(next)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || next > w.seg+16 {
			return fmt.Errorf("ledger: journal: %w", err)
		}
		next++ // one a failed rollover could not remove: skipped, empty
	}
	fail := func(err error) error {
		f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("ledger: journal: %s: %w", segName(next), err)
	}
	// Allocate every block now, once per segment: a page of the mapping
	// without a block behind it would fault on the invoke path, and with
	// SIGBUS on a full disk.
	if err := allocate(f, headerSize+w.maxSize); err != nil {
		return fail(err)
	}
	mem, err := mapSegment(f, headerSize+w.maxSize)
	if err != nil {
		return fail(fmt.Errorf("map: %w", err))
	}
	w.unmapLocked()
	w.f, w.mem, w.seg, w.size = f, mem, next, 0
	return nil
}

// zeroFill writes size bytes of zeros to f: it gives f its blocks where
// fallocate cannot.
func zeroFill(f *os.File, size int64) error {
	zeros := make([]byte, 64<<10)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) unmapLocked() {
	if w.mem != nil {
		_ = unmapSegment(w.mem)
		w.mem = nil
	}
	if w.f != nil {
		// The data is committed; leave the file no longer than it.
		_ = w.f.Truncate(headerSize + w.size)
		_ = w.f.Close()
		w.f = nil
	}
}

// append writes one line (which ends in '\n').
func (w *writer) append(line []byte) error {
	if int64(len(line)) > w.maxSize {
		return fmt.Errorf("ledger: a journal line of %d bytes is longer than a segment", len(line))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mem == nil {
		return errors.New("ledger: journal closed")
	}
	if w.size+int64(len(line)) > w.maxSize {
		if err := w.rotateLocked(); err != nil {
			return err
		}
	}
	copy(w.mem[headerSize+w.size:], line)
	w.size += int64(len(line))
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&w.mem[0])), uint64(w.size))
	return nil
}

// current is the segment being written.
func (w *writer) current() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seg
}

func (w *writer) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.unmapLocked()
	return nil
}

// line is one journal entry (its id is in the event itself).
type line struct {
	subject, data []byte
	end           int // offset just past the line's '\n' in what was read
}

func encodeLine(buf []byte, id, subject string, data []byte) []byte {
	buf = append(buf, id...)
	buf = append(buf, '\t')
	buf = append(buf, subject...)
	buf = append(buf, '\t')
	buf = append(buf, data...)
	return append(buf, '\n')
}

// parseLines splits whole lines off b, appending them to lines; consumed is
// where the unfinished tail starts, damaged how many lines had no id or
// subject.
func parseLines(lines []line, b []byte) (_ []line, consumed, damaged int) {
	for {
		i := bytes.IndexByte(b[consumed:], '\n')
		if i < 0 {
			return lines, consumed, damaged
		}
		raw := b[consumed : consumed+i]
		consumed += i + 1
		id, rest, ok1 := bytes.Cut(raw, []byte{'\t'})
		subject, data, ok2 := bytes.Cut(rest, []byte{'\t'})
		if !ok1 || !ok2 || len(id) == 0 || len(subject) == 0 {
			damaged++ // nothing to publish
			continue
		}
		lines = append(lines, line{subject: subject, data: data, end: consumed})
	}
}

// readFrom reads the committed data of segment seg of dir from offset off
// (of the data) into buf.
func readFrom(dir string, seg uint64, off int64, buf []byte) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, segName(seg)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var hdr [headerSize]byte
	if n, err := f.ReadAt(hdr[:], 0); n < headerSize {
		if err == nil || errors.Is(err, io.EOF) {
			return buf[:0], nil // a file cut short: nothing committed
		}
		return nil, err
	}
	committed := int64(binary.NativeEndian.Uint64(hdr[:])) // as the writer's atomic store left it
	n := committed - off
	if n <= 0 {
		return buf[:0], nil
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := f.ReadAt(buf, headerSize+off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}
