package billing

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/meter"
	"github.com/shoal-dev/shoal/internal/pricing"
)

// FuzzBuild feeds ledger lines, as GET /shoal/v1/usage serves them, to Build
// and the writers: whatever the ledger holds, a report comes out or an error
// does, never a panic.
func FuzzBuild(f *testing.F) {
	var l ledger
	l.invoke("od", "$LATEST", meter.OnDemand, 512, t0.Add(time.Minute), 30*time.Millisecond, 200*time.Millisecond, 5*time.Millisecond)
	l.provisioned("pc", "1", 2, 256, t0, t0.Add(time.Hour))
	l.invoke("pc", "1", meter.Provisioned, 256, t0.Add(2*time.Minute), 30*time.Millisecond, 0, time.Millisecond)
	l.instance("cp", "i-1", "m7i.large", meter.InstanceRunning, t0, t0.Add(time.Hour))
	ev := l.invoke("mi", "1", meter.ManagedInstances, 2048, t0.Add(3*time.Minute), 30*time.Millisecond, 0, time.Millisecond)
	ev.CapacityProvider = "cp"
	var seed bytes.Buffer
	for i := range l.events {
		b, _ := json.Marshal(&l.events[i])
		seed.Write(b)
		seed.WriteByte('\n')
	}
	f.Add(seed.String())
	f.Add(`{"kind":"invocation","end":"2026-11-26T10:30:00Z","start":"2026-11-26T12:00:00Z","memory_mb":99999999,"duration_ms":-5,"compute":"managed-instances"}`)
	f.Add(`{"kind":"provisioned","start":"2026-11-26T09:00:00Z","end":"2026-11-26T12:00:00Z","concurrency":-3,"memory_mb":-1}`)
	cat := pricing.Default()
	f.Fuzz(func(t *testing.T, s string) {
		var events []meter.Event
		dec := json.NewDecoder(strings.NewReader(s))
		for len(events) < 200 {
			var ev meter.Event
			if dec.Decode(&ev) != nil {
				break
			}
			events = append(events, ev)
		}
		r, err := Build(events, cat, Options{Since: t0, Until: t0.Add(time.Hour), Step: time.Minute})
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WriteJSON(&out, r); err != nil {
			t.Fatal(err)
		}
		if err := WriteTable(&out, r); err != nil {
			t.Fatal(err)
		}
	})
}
