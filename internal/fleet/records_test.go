package fleet

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/shoal-dev/shoal/internal/bus"
)

// failingKV fails every Delete while fail is set, as a cluster without its
// majority does.
type failingKV struct {
	jetstream.KeyValue
	fail atomic.Bool
}

func (f *failingKV) Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error {
	if f.fail.Load() {
		return errors.New("nats: no response from stream")
	}
	return f.KeyValue.Delete(ctx, key, opts...)
}

// recordsBucket is an instance-record bucket on a bus of the test's own.
func recordsBucket(t *testing.T) jetstream.KeyValue {
	t.Helper()
	b, err := bus.Start(context.Background(), bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	store, err := b.JetStream().CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "records"})
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// The record of a gone instance whose delete failed is deleted by a later
// round of the monitor, once the store answers again.
func TestRecordDeleteIsTriedAgain(t *testing.T) {
	ctx := context.Background()
	store := recordsBucket(t)
	kv := &failingKV{KeyValue: store}
	l := &Local{kv: kv, log: testLogger(), insts: map[string]*localInst{}, undeleted: map[string]bool{}}
	if _, err := store.Put(ctx, "i-gone", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	present := func() bool {
		_, err := store.Get(ctx, "i-gone")
		return err == nil
	}

	kv.fail.Store(true)
	l.deleteRecord(ctx, "i-gone")
	now := time.Now()
	l.retryDeletes(now) // the store still fails
	if !present() || !l.undeleted["i-gone"] {
		t.Fatalf("after failed deletes: record present %v, to be tried again %v", present(), l.undeleted["i-gone"])
	}

	kv.fail.Store(false)
	l.retryDeletes(now.Add(deleteRetryInterval / 2)) // too soon: not tried
	if !present() {
		t.Fatal("deleted before the retry interval passed")
	}
	l.retryDeletes(now.Add(deleteRetryInterval))
	if present() || len(l.undeleted) != 0 {
		t.Errorf("after the store answered again: record present %v, still to delete %v", present(), l.undeleted)
	}
}

// TestSaveDoesNotBringBackATerminatedRecord: a save that took its record
// before the instance was terminated (a checkpoint, a heartbeat) and writes
// after the record's delete must not bring the record back, or the next
// control plane finds it and records a second, wrong end of the instance.
func TestSaveDoesNotBringBackATerminatedRecord(t *testing.T) {
	ctx := context.Background()
	store := recordsBucket(t)
	li := &localInst{info: Instance{ID: "i-1", State: StateRunning}}
	l := &Local{kv: store, log: testLogger(), insts: map[string]*localInst{"i-1": li}, undeleted: map[string]bool{}}
	present := func() bool {
		_, err := store.Get(ctx, "i-1")
		return err == nil
	}

	stale := l.recordLocked(li) // taken while it runs
	l.save(ctx, stale)
	if !present() {
		t.Fatal("the record of a running instance was not saved")
	}
	delete(l.insts, "i-1") // terminated
	l.deleteRecord(ctx, "i-1")
	l.save(ctx, stale) // the overtaken save
	if present() {
		t.Error("a save after the delete brought a terminated instance's record back")
	}
}
