package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/shoal-dev/shoal/internal/env"
)

// FuzzFrameDecoder feeds arbitrary bytes to the frame reader and the body
// decoders: they must return errors, never panic or allocate past MaxFrame,
// and a decoded invoke must re-encode to the same body.
func FuzzFrameDecoder(f *testing.F) {
	b, _ := appendInvoke(nil, 1, "env", &env.Invocation{RequestID: "r", Payload: []byte(`{}`), TailLog: true,
		Deadline: time.Unix(5, 6)})
	f.Add(b)
	b, _ = appendResult(nil, 2, &env.Result{Payload: []byte("x"), LogTail: []byte("log"), Duration: 9, MaxMemoryUsedMB: 3})
	f.Add(b)
	f.Add(appendRefused(nil, 3, ReasonCPU, "hot"))
	f.Add(appendError(nil, 4, "boom"))
	f.Add(appendCancel(nil, 5))
	f.Add(appendStart(nil, 6, "text/plain"))
	f.Add(appendChunk(nil, 7, []byte("chunk")))
	f.Add(appendCredit(nil, 8, 4096))
	f.Add([]byte{0, 0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := frameReader{r: bytes.NewReader(data)}
		for {
			fm, err := fr.next()
			if err != nil {
				return
			}
			if len(fm.body) > MaxFrame {
				t.Fatalf("body of %d bytes", len(fm.body))
			}
			switch fm.typ {
			case frameInvoke:
				envID, inv, _, err := decodeInvoke(fm.body)
				if err != nil {
					continue
				}
				re, err := appendInvoke(nil, fm.id, envID, &inv)
				if err != nil {
					t.Fatal(err)
				}
				env2, inv2, _, err := decodeInvoke(re[headerLen:])
				if err != nil {
					t.Fatalf("re-encoded invoke does not decode: %v", err)
				}
				if env2 != envID || !cmp.Equal(inv, inv2, cmpopts.EquateEmpty()) {
					t.Fatalf("invoke round trip differs: %s", cmp.Diff(inv, inv2, cmpopts.EquateEmpty()))
				}
			case frameResult:
				r, err := decodeResult(fm.body)
				if err != nil {
					continue
				}
				re, err := appendResult(nil, fm.id, &r)
				if err != nil {
					t.Fatal(err)
				}
				r2, err := decodeResult(re[headerLen:])
				if err != nil || !cmp.Equal(r, r2, cmpopts.EquateEmpty()) {
					t.Fatalf("result round trip differs: %v %s", err, cmp.Diff(r, r2, cmpopts.EquateEmpty()))
				}
			case frameRefused:
				_, _ = decodeRefused(fm.body)
			case frameError:
				_, _ = decodeError(fm.body)
			case frameCredit:
				if n, err := decodeCredit(fm.body); err == nil && (n < 0 || n > streamWindow) {
					t.Fatalf("credit %d outside the window", n)
				}
			case frameStart, frameChunk:
				st := newCallStream()
				_ = st.push(fm)
			}
		}
	})
}
