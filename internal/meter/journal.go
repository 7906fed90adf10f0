package meter

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
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

// writer appends lines to the newest segment.
//
// Concurrency: mu guards every field.
type writer struct {
	dir     string
	maxSize int64

	mu   sync.Mutex
	f    *os.File
	seg  uint64
	size int64
	err  error // the last write error, reported once
}

func openWriter(dir string, maxSize int64) (*writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("meter: journal: %w", err)
	}
	segs, err := segments(dir)
	if err != nil {
		return nil, fmt.Errorf("meter: journal: %w", err)
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

func (w *writer) rotateLocked() error {
	if w.f != nil {
		_ = w.f.Close()
		w.f = nil
	}
	w.seg++
	f, err := os.OpenFile(filepath.Join(w.dir, segName(w.seg)), os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("meter: journal: %w", err)
	}
	w.f, w.size = f, 0
	return nil
}

// append writes one line (which ends in '\n').
func (w *writer) append(line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("meter: journal closed")
	}
	if w.size > 0 && w.size+int64(len(line)) > w.maxSize {
		if err := w.rotateLocked(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	return err
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
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
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
// where the unfinished tail starts.
func parseLines(lines []line, b []byte) (_ []line, consumed int) {
	for {
		i := bytes.IndexByte(b[consumed:], '\n')
		if i < 0 {
			return lines, consumed
		}
		raw := b[consumed : consumed+i]
		consumed += i + 1
		id, rest, ok1 := bytes.Cut(raw, []byte{'\t'})
		subject, data, ok2 := bytes.Cut(rest, []byte{'\t'})
		if !ok1 || !ok2 || len(id) == 0 || len(subject) == 0 {
			continue // a damaged line: nothing to publish
		}
		lines = append(lines, line{subject: subject, data: data, end: consumed})
	}
}

// readFrom reads segment seg of dir from offset off to its end into buf.
func readFrom(dir string, seg uint64, off int64, buf []byte) ([]byte, error) {
	f, err := os.Open(filepath.Join(dir, segName(seg)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	n := st.Size() - off
	if n <= 0 {
		return buf[:0], nil
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}
