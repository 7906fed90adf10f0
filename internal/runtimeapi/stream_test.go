package runtimeapi

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// chunkSink records a streamed response, one entry per Write, and hands each
// to the test as it arrives.
type chunkSink struct {
	mu          sync.Mutex
	contentType string
	starts      int
	chunks      []string
	arrived     chan string
	fail        bool
}

func newChunkSink() *chunkSink { return &chunkSink{arrived: make(chan string, 1024)} }

func (s *chunkSink) Start(ct string) {
	s.mu.Lock()
	s.contentType = ct
	s.starts++
	s.mu.Unlock()
}

func (s *chunkSink) Write(p []byte) (int, error) {
	if s.fail {
		return 0, errors.New("caller gone")
	}
	s.mu.Lock()
	s.chunks = append(s.chunks, string(p))
	s.mu.Unlock()
	s.arrived <- string(p)
	return len(p), nil
}

func (s *chunkSink) body() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.chunks, "")
}

// streamingPost posts a chunked response the way a streaming runtime does,
// writing each part only when next allows it, then the trailers.
func streamingPost(t *testing.T, u string, parts []string, next func(i int), trailers map[string]string) (int, error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, u, pr)
	req.Header.Set("Lambda-Runtime-Function-Response-Mode", "streaming")
	req.Header.Set("Content-Type", "text/plain")
	req.Trailer = http.Header{}
	for k := range trailers {
		req.Trailer[k] = nil
	}
	go func() {
		for i, p := range parts {
			if _, err := pw.Write([]byte(p)); err != nil {
				return
			}
			next(i)
		}
		for k, v := range trailers {
			req.Trailer.Set(k, v)
		}
		pw.Close()
	}()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func takeOne(t *testing.T, s *Server, inv *Invocation) {
	t.Helper()
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	if r, err := get(context.Background(), http.DefaultClient, url(s, "invocation/next")); err != nil || r.status != 200 {
		t.Fatalf("next: %v %v", r, err)
	}
}

// Each chunk reaches the caller before the runtime sends the next one.
func TestStreamedResponseChunkByChunk(t *testing.T) {
	s := newTestServer(t, 1)
	sink := newChunkSink()
	inv := &Invocation{ID: "s-1", Payload: []byte(`{}`), Stream: sink}
	takeOne(t, s, inv)
	parts := []string{"first ", "second ", "third"}
	status, err := streamingPost(t, url(s, "invocation/s-1/response"), parts, func(i int) {
		// The runtime goes on only once the caller holds what it wrote.
		for got := ""; got != parts[i]; {
			select {
			case c := <-sink.arrived:
				got += c
			case <-time.After(10 * time.Second):
				t.Errorf("part %d did not reach the caller while the runtime waited", i)
				return
			}
		}
	}, nil)
	if err != nil || status != 202 {
		t.Fatalf("post: %d %v", status, err)
	}
	o := <-inv.Done()
	if !o.Streamed || o.Error || o.Bytes != int64(len("first second third")) || len(o.Payload) != 0 || o.ContentType != "text/plain" {
		t.Errorf("outcome %+v", o)
	}
	if sink.body() != "first second third" || sink.starts != 1 || sink.contentType != "text/plain" {
		t.Errorf("caller got %q (%d starts, %q)", sink.body(), sink.starts, sink.contentType)
	}
}

// Error trailers end a streamed response as a function error.
func TestStreamedResponseErrorTrailers(t *testing.T) {
	s := newTestServer(t, 1)
	sink := newChunkSink()
	inv := &Invocation{ID: "s-2", Payload: []byte(`{}`), Stream: sink}
	takeOne(t, s, inv)
	errBody := `{"errorMessage":"boom","errorType":"Error"}`
	status, err := streamingPost(t, url(s, "invocation/s-2/response"), []string{"partial"}, func(int) {},
		map[string]string{"Lambda-Runtime-Function-Error-Type": "Error",
			"Lambda-Runtime-Function-Error-Body": base64.StdEncoding.EncodeToString([]byte(errBody))})
	if err != nil || status != 202 {
		t.Fatalf("post: %d %v", status, err)
	}
	o := <-inv.Done()
	if !o.Streamed || !o.Error || o.ErrorType != "Error" || string(o.Payload) != errBody {
		t.Errorf("outcome %+v", o)
	}
	if sink.body() != "partial" {
		t.Errorf("caller got %q", sink.body())
	}
}

// A caller that goes away does not stop the runtime: the rest is read and dropped.
func TestStreamedResponseCallerGone(t *testing.T) {
	s := newTestServer(t, 1)
	sink := newChunkSink()
	sink.fail = true
	inv := &Invocation{ID: "s-3", Payload: []byte(`{}`), Stream: sink}
	takeOne(t, s, inv)
	status, err := streamingPost(t, url(s, "invocation/s-3/response"), []string{"a", "b"}, func(int) {}, nil)
	if err != nil || status != 202 {
		t.Fatalf("post: %d %v", status, err)
	}
	if o := <-inv.Done(); !o.Streamed || o.Error || o.Bytes != 2 {
		t.Errorf("outcome %+v", o)
	}
}

// A streamed response past the streaming limit fails the invocation.
func TestStreamedResponseTooLarge(t *testing.T) {
	defer func(n int64) { maxStreamed = n }(maxStreamed)
	maxStreamed = 10
	s := newTestServer(t, 1)
	sink := newChunkSink()
	inv := &Invocation{ID: "s-4", Payload: []byte(`{}`), Stream: sink}
	takeOne(t, s, inv)
	status, _ := streamingPost(t, url(s, "invocation/s-4/response"), []string{"0123456789", "x"}, func(int) {}, nil)
	if status != 413 && status != 0 {
		t.Errorf("post answered %d, want 413", status)
	}
	o := <-inv.Done()
	if !o.Error || o.ErrorType != "Function.ResponseSizeTooLarge" || !o.Streamed {
		t.Errorf("outcome %+v", o)
	}
	if sink.body() != "0123456789" {
		t.Errorf("caller got %q", sink.body())
	}
}

// A caller that streams gets a buffered answer in one piece, and one that does
// not gets a streamed answer whole.
func TestStreamAndBufferMix(t *testing.T) {
	s := newTestServer(t, 1)
	sink := newChunkSink()
	inv := &Invocation{ID: "s-5", Payload: []byte(`{}`), Stream: sink}
	takeOne(t, s, inv)
	if st, _ := post(http.DefaultClient, url(s, "invocation/s-5/response"), `{"ok":true}`, map[string]string{"Content-Type": "application/json"}); st != 202 {
		t.Fatalf("post %d", st)
	}
	if o := <-inv.Done(); !o.Streamed || o.ContentType != "application/json" || sink.body() != `{"ok":true}` {
		t.Errorf("outcome %+v, caller got %q", o, sink.body())
	}

	plain := &Invocation{ID: "s-6", Payload: []byte(`{}`)}
	takeOne(t, s, plain)
	status, err := streamingPost(t, url(s, "invocation/s-6/response"), []string{"one ", "two"}, func(int) {}, nil)
	if err != nil || status != 202 {
		t.Fatalf("post: %d %v", status, err)
	}
	if o := <-plain.Done(); o.Streamed || string(o.Payload) != "one two" || o.ContentType != "text/plain" {
		t.Errorf("buffered outcome %+v", o)
	}
}
