package lambdaapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/registry"
)

type nopInvoker struct{}

func (nopInvoker) Invoke(ctx context.Context, req *InvokeRequest) (*InvokeResult, error) {
	return &InvokeResult{Payload: req.Payload}, nil
}

// BenchmarkInvokeHandler measures the REST layer's own cost per invocation (parsing,
// resolution, headers), with an invoker that returns the payload at once.
func BenchmarkInvokeHandler(b *testing.B) {
	ctx := context.Background()
	bs, err := bus.Start(ctx, bus.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	reg, err := registry.Open(ctx, bs.JetStream(), registry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close()
	if _, _, err := reg.CreateFunction(ctx, registry.CreateFunctionInput{
		Config:  registry.Version{FunctionName: "echo", Runtime: "provided.al2023", Handler: "bootstrap"},
		ZipFile: makeZip(b, map[string]string{"bootstrap": "x"}),
	}); err != nil {
		b.Fatal(err)
	}
	h := New(Config{}, reg, nopInvoker{}, nil)
	payload := []byte(`{"hello":"world"}`)
	base := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/echo/invocations", nil)
	base.ContentLength = int64(len(payload))
	body := bytes.NewReader(payload)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		req := *base
		body.Reset(payload)
		req.Body = io.NopCloser(body)
		clear(w.h)
		h.ServeHTTP(w, &req)
		if w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
