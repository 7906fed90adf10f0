package ledger

import (
	"context"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRecordPublished is the cost of one event from Record until the
// ledger has acknowledged it, with the embedded NATS server in the same
// process: cpu-µs/event is everything this process spent per event.
func BenchmarkRecordPublished(b *testing.B) {
	bs := startBusB(b)
	defer bs.Close()
	r, err := NewRecorder(Config{Dir: b.TempDir()}, bs.JetStream(), nil)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	ev := inv(0, t0)
	cpu0 := cpuNow()
	b.ResetTimer()
	for i := range b.N {
		ev.ID = "inv-" + string(rune('a'+i%26)) + time.Duration(i).String()
		r.Record(ev)
	}
	for r.Published() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuNow()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
	_ = r.Close(context.Background())
}
