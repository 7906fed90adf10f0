package guard

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRecover(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	before := Panics()
	var answered error
	func() {
		defer Recover(log, "a handler", func(err error) { answered = err })
		var m map[string]int
		//lint:ignore SA5000 the test needs a runtime panic, and this is one
		m["boom"]++ // a runtime panic: assignment to entry in nil map
	}()
	var pe *PanicError
	if !errors.As(answered, &pe) || !strings.Contains(pe.Error(), "nil map") || !bytes.Contains(pe.Stack, []byte("guard.TestRecover")) {
		t.Fatalf("answered %v", answered)
	}
	if Panics() != before+1 {
		t.Errorf("panics counted %d, want %d", Panics(), before+1)
	}
	if s := logged.String(); !strings.Contains(s, "a handler") || !strings.Contains(s, "nil map") || !strings.Contains(s, "guard_test.go") {
		t.Errorf("log: %s", s)
	}
}

func TestRunGoesOn(t *testing.T) {
	rounds := 0
	for i := range 3 {
		err := Run(nil, "a loop", func() {
			rounds++
			if i == 1 {
				panic("round 1")
			}
		})
		if (err != nil) != (i == 1) {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if rounds != 3 {
		t.Fatalf("%d rounds ran, want 3", rounds)
	}
	if err := Run(nil, "nothing", func() {}); err != nil {
		t.Fatal(err)
	}
}
