package runtimeapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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

// FuzzHandler drives the server with arbitrary requests while one
// invocation is out: it must never panic, answer only the statuses the
// Runtime API uses, and settle the invocation at most once.
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/2018-06-01/runtime/invocation/id-1/response", "", []byte(`{"ok":true}`))
	f.Add("POST", "/2018-06-01/runtime/invocation/id-1/error", "Runtime.X", []byte(`{"errorType":"A","errorMessage":"b"}`))
	f.Add("POST", "/2018-06-01/runtime/invocation/id-1/error", "", []byte(`not json`))
	f.Add("POST", "/2018-06-01/runtime/init/error", "", []byte(`{"errorType":`))
	f.Add("PUT", "/2018-06-01/runtime/invocation/next", "", []byte(nil))
	f.Add("POST", "/2018-06-01/runtime/invocation/other/response", "", []byte(`1`))
	f.Fuzz(func(t *testing.T, method, path, errType string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t") || method == "" ||
			strings.ContainsAny(method, " \r\n\t()<>@,;:\\\"/[]?={}") || strings.ContainsAny(errType, "\r\n\x00") {
			return
		}
		s := newServer(Config{Slots: 1}, nil)
		s.logger = discardLogger()
		inv := &Invocation{ID: "id-1", Deadline: time.Now().Add(time.Minute)}
		if err := s.Submit(inv); err != nil {
			t.Fatal(err)
		}
		if got := s.take(t.Context()); got != inv {
			t.Fatal("take")
		}
		req, err := http.NewRequest(method, "http://127.0.0.1"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if errType != "" {
			req.Header.Set(hdrErrorType, errType)
		}
		if method == http.MethodGet && strings.HasSuffix(path, "/next") {
			return // a poll would wait for an invocation
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		switch w.Code {
		case 202, 400, 404, 405, 413:
		default:
			t.Fatalf("%s %s: status %d", method, path, w.Code)
		}
		if w.Code == 202 && (strings.Contains(path, "/invocation/")) {
			select {
			case o := <-inv.Done():
				if o.Error && o.ErrorType == "" {
					t.Fatal("error without a type")
				}
			default:
				t.Fatal("202 without settling")
			}
		}
	})
}
