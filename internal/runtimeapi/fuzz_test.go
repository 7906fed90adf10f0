package runtimeapi

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func FuzzParsePath(f *testing.F) {
	for _, p := range []string{
		"/2018-06-01/runtime/invocation/next", "/2018-06-01/runtime/invocation/x/response",
		"/2018-06-01/runtime/invocation/x/error", "/2018-06-01/runtime/init/error", "/2018-06-01/runtime/invocation//error",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rt, id := parsePath(p)
		switch rt {
		case routeResponse, routeError:
			if id == "" || strings.Contains(id, "/") {
				t.Fatalf("bad id %q from %q", id, p)
			}
			if !strings.HasSuffix(p, "/"+id+"/response") && !strings.HasSuffix(p, "/"+id+"/error") {
				t.Fatalf("id %q not in %q", id, p)
			}
		case routeNext, routeInitError, routeNotFound:
			if id != "" {
				t.Fatalf("id %q for route %v", id, rt)
			}
		}
	})
}

var seeds = []string{
	"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
	"POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type\r\n\r\n2\r\n{}\r\n0\r\nLambda-Runtime-Function-Error-Type: X\r\nLambda-Runtime-Function-Error-Body: e30=\r\n\r\n",
	"POST /2018-06-01/runtime/invocation/id-1/error HTTP/1.1\r\nLambda-Runtime-Function-Error-Type: A.B\r\nContent-Length: 5\r\n\r\noops!",
	"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
	"PUT /2018-06-01/runtime/invocation/next HTTP/1.0\r\n\r\n",
	"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\nPOST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nContent-Length: 1\r\n\r\n1",
}

// FuzzConn feeds raw bytes to a runtime connection while one invocation is
// submitted: it must never panic or hang, must answer only with statuses the
// Runtime API uses, and must settle the invocation at most once, and only
// after a 202.
func FuzzConn(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newServer(Config{Slots: 1}, discardLogger())
		inv := &Invocation{ID: "id-1", Payload: []byte(`{"k":1}`), Deadline: time.Now().Add(time.Minute)}
		if err := s.Submit(inv); err != nil {
			t.Fatal(err)
		}
		close(s.closed) // later polls answer 503 instead of waiting
		var out bytes.Buffer
		c := &conn{s: s, br: bufio.NewReader(bytes.NewReader(data)), w: &out, peerClosed: func() bool { return false }}
		c.serve()

		br := bufio.NewReader(bytes.NewReader(out.Bytes()))
		accepted := 0
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			switch resp.StatusCode {
			case 100, 200, 400, 404, 405, 413, 503:
			case 202:
				accepted++
			default:
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
		select {
		case o := <-inv.Done():
			if o.Error && o.ErrorType == "" {
				t.Fatal("error outcome without a type")
			}
			if accepted == 0 && o.ErrorType != "Function.ResponseSizeTooLarge" {
				t.Fatal("settled without a 202")
			}
		default:
		}
	})
}

// FuzzReadRequest checks the request parser against any input: no panic,
// and a body is never longer than the limit.
func FuzzReadRequest(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for range 4 {
			var req request
			if err := readRequestHead(br, &req); err != nil {
				return
			}
			if req.chunked && req.contentLength >= 0 {
				t.Fatal("chunked with a content length")
			}
			body, err := readBody(br, &req, nil, 64)
			if len(body) > 64 {
				t.Fatalf("body of %d bytes over the limit", len(body))
			}
			if err != nil {
				return
			}
		}
	})
}
