package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/shoal-dev/shoal/internal/poll"
)

// smallDisk mounts a tmpfs of size bytes in a new directory and removes it
// when the test ends: a disk that fills up. It needs root.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fill takes the free space of dir but keep bytes, in a file it returns.
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-keep); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestJournalOnAFullDisk: a segment that cannot get its blocks is an error,
// never a sparse file whose mapping would fault (SIGBUS) when written.
func TestJournalOnAFullDisk(t *testing.T) {
	disk := smallDisk(t, 256<<10)
	_, err := openWriter(filepath.Join(disk, "meter"), 1<<20)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a 1 MiB segment on a 256 KiB disk: %v, want ENOSPC", err)
	}
	if segs, _ := segments(filepath.Join(disk, "meter")); len(segs) != 0 {
		t.Errorf("segments %v left behind", segs)
	}
}

// TestRolloverFailureKeepsSegment: when the next segment cannot be made
// (the disk filled up), the event that needed it is refused and counted,
// the current segment stays usable, and once there is room the journal
// rolls over and goes on; everything journaled is published.
func TestRolloverFailureKeepsSegment(t *testing.T) {
	disk := smallDisk(t, 1<<20)
	const segBytes = 64 << 10
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	dir := filepath.Join(disk, "meter")
	r, err := NewRecorder(Config{Dir: dir, SegmentBytes: segBytes}, b.JetStream(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	// Room for what the journal and the publisher's files need now, not for
	// a second segment.
	filler := fill(t, disk, 32<<10)

	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	recorded := 0
	for i := 0; r.Failed() == 0; i++ {
		if i > 10000 {
			t.Fatal("the journal never filled its segment")
		}
		r.Record(inv(i, t0))
		if r.Failed() == 0 {
			recorded++
		}
	}
	if segs, _ := segments(dir); len(segs) != 1 {
		t.Fatalf("segments %v after a failed rollover, want the first alone", segs)
	}
	if got := counter(t, r, "shoal_usage_record_failures_total"); got != 1 {
		t.Errorf("shoal_usage_record_failures_total = %v, want 1", got)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		r.Record(inv(100000+i, t0))
	}
	if r.Failed() != 1 {
		t.Fatalf("%d events failed after room was made, want the 1 from before", r.Failed())
	}
	poll.Until(t, 20*time.Second, func() error {
		if n := r.Published(); n != int64(recorded+10) {
			return fmt.Errorf("published %d of %d", n, recorded+10)
		}
		return nil
	})
	got := count(t, b.JetStream(), Query{})
	if len(got) != recorded+10 {
		t.Errorf("the ledger holds %d events, want %d", len(got), recorded+10)
	}
}

// TestDamagedLinesCounted: damaged journal lines are skipped, counted and
// logged; the good ones around them are published.
func TestDamagedLinesCounted(t *testing.T) {
	b := startBus(t, t.TempDir(), "")
	defer b.Close()
	dir := t.TempDir()
	w, err := openWriter(dir, 4096)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i, l := range [][]byte{
		encodeLine(nil, "inv-1", Subject(inv(1, t0), ""), mustJSON(t, inv(1, t0))),
		[]byte("garbage without tabs\n"),
		encodeLine(nil, "inv-2", Subject(inv(2, t0), ""), mustJSON(t, inv(2, t0))),
		[]byte("\tno id\n"),
	} {
		if err := w.append(l); err != nil {
			t.Fatal(i, err)
		}
	}
	_ = w.close()
	var logged strings.Builder
	p := &publisher{dir: dir, js: b.JetStream(), batch: 512, maxBytes: maxMessage, logger: logTo(&logged)}
	if n, err := drain(context.Background(), p); err != nil || n != 2 {
		t.Fatalf("drained %d, %v; want the 2 good events", n, err)
	}
	if p.damaged.Load() != 2 || !strings.Contains(logged.String(), "damaged usage journal lines") {
		t.Errorf("damaged %d, log %q", p.damaged.Load(), logged.String())
	}
}

// logTo is a logger that writes to b.
func logTo(b *strings.Builder) *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// counter reads one of the recorder's counters as Prometheus scrapes it.
func counter(t *testing.T, r *Recorder, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(r.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
