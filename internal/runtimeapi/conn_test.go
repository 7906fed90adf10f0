package runtimeapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/poll"
)

// rawExchange submits one invocation "id-1", has it handed out on a first
// connection, then writes raw bytes on a second connection and returns what
// came back.
func rawExchange(t *testing.T, raw string) (*Server, *Invocation, []*http.Response) {
	t.Helper()
	s := newTestServer(t, 1)
	inv := &Invocation{ID: "id-1", Payload: []byte(`{}`), Deadline: time.Now().Add(time.Minute)}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	if r, err := get(t.Context(), &http.Client{}, url(s, "invocation/next")); err != nil || r.status != 200 {
		t.Fatalf("next: %v %v", r.status, err)
	}
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	var resps []*http.Response
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resps = append(resps, resp)
	}
	return s, inv, resps
}

// longErrorJSON is an error body whose base64 (longErrorBody) is 12 KB, a
// trailer line three times the reader's buffer.
var (
	longErrorJSON = `{"errorMessage":"` + strings.Repeat("m", 9000) + `","errorType":"Big"}`
	longErrorBody = base64.StdEncoding.EncodeToString([]byte(longErrorJSON))
)

func statuses(rs []*http.Response) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Status[:3])
		b.WriteByte(' ')
	}
	return strings.TrimSpace(b.String())
}

func TestRawRequests(t *testing.T) {
	cases := []struct {
		name, raw, want string
		settled         string // the payload the invocation gets, "" if none
		errType         string
	}{
		{"content length", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\"ok\"", "202", `"ok"`, ""},
		{"chunked", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n\"o\r\n2;ext=1\r\nk\"\r\n0\r\n\r\n", "202", `"ok"`, ""},
		{"error trailers", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n3\r\nabc\r\n0\r\nLambda-Runtime-Function-Error-Type: Broken\r\nLambda-Runtime-Function-Error-Body: eyJlcnJvclR5cGUiOiJCcm9rZW4ifQ==\r\n\r\n", "202", `{"errorType":"Broken"}`, "Broken"},
		{"expect continue", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n7", "100 202", "7", ""},
		{"absolute form and query", "POST http://127.0.0.1:9/2018-06-01/runtime/invocation/id-1/response?x=1 HTTP/1.1\r\nContent-Length: 1\r\n\r\n1", "202", "1", ""},
		{"keep-alive: unknown then known", "POST /2018-06-01/runtime/invocation/nope/response HTTP/1.1\r\nContent-Length: 1\r\n\r\n1POST /2018-06-01/runtime/invocation/id-1/error HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "400 202", "", "Unhandled"},
		{"not found keeps the connection", "GET /nope HTTP/1.1\r\n\r\nPOST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nContent-Length: 1\r\n\r\n2", "404 202", "2", ""},
		{"wrong method", "DELETE /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n", "405", "", ""},
		{"malformed request line", "POST\r\n\r\n", "400", "", ""},
		{"bad content length", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400", "", ""},
		{"both lengths", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "400", "", ""},
		{"bad chunk", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400", "", ""},
		{"http/1.0 closes", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.0\r\nContent-Length: 1\r\n\r\n3POST /x HTTP/1.1\r\n\r\n", "202", "3", ""},
		// Lines longer than the reader's 4 KiB buffer, up to maxLine: an
		// X-Ray error cause header, a base64 error-body trailer.
		{"long header", "POST /2018-06-01/runtime/invocation/id-1/error HTTP/1.1\r\nLambda-Runtime-Function-XRay-Error-Cause: " +
			strings.Repeat("x", maxLine-len("Lambda-Runtime-Function-XRay-Error-Cause: ")) + "\r\nContent-Length: 2\r\n\r\n{}", "202", "", "Unhandled"},
		{"long trailer", "POST /2018-06-01/runtime/invocation/id-1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n" +
			"Lambda-Runtime-Function-Error-Type: Big\r\nLambda-Runtime-Function-Error-Body: " + longErrorBody + "\r\n\r\n",
			"202", longErrorJSON, "Big"},
		{"header line over the limit", "POST /2018-06-01/runtime/invocation/id-1/error HTTP/1.1\r\nX-Long: " +
			strings.Repeat("x", maxLine) + "\r\nContent-Length: 2\r\n\r\n{}", "400", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, inv, resps := rawExchange(t, c.raw)
			if got := statuses(resps); got != c.want {
				t.Errorf("statuses %q, want %q", got, c.want)
			}
			select {
			case o := <-inv.Done():
				if c.settled != "" && string(o.Payload) != c.settled {
					t.Errorf("payload %q, want %q", o.Payload, c.settled)
				}
				if o.ErrorType != c.errType {
					t.Errorf("error type %q, want %q", o.ErrorType, c.errType)
				}
				if c.settled == "" && c.errType == "" {
					t.Errorf("settled unexpectedly: %+v", o)
				}
			default:
				if c.settled != "" || c.errType != "" {
					t.Error("not settled")
				}
			}
		})
	}
}

// A poller that disconnects while waiting does not swallow the next
// invocation: it goes to a poller that is still there.
func TestPollerGoneGetsNothing(t *testing.T) {
	s := newTestServer(t, 1)
	gone, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(gone, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 5*time.Second, func() error {
		select {
		case <-s.Ready():
			return nil
		default:
			return io.ErrNoProgress
		}
	})
	gone.Close()
	inv := &Invocation{ID: "kept", Payload: []byte(`1`), Deadline: time.Now().Add(time.Minute)}
	// The closed poller may or may not have been told yet; either way the
	// invocation ends up with the live poller.
	poll.Until(t, 5*time.Second, func() error {
		if s.InUse() != 0 {
			return io.ErrNoProgress
		}
		return nil
	})
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	r, err := get(t.Context(), &http.Client{}, url(s, "invocation/next"))
	if err != nil || r.header.Get("Lambda-Runtime-Aws-Request-Id") != "kept" {
		t.Fatalf("live poller got %+v %v", r, err)
	}
}

// Header values from callers (a pretty-printed client context) cannot break
// the response framing.
func TestNextHeaderValuesSanitised(t *testing.T) {
	s := newTestServer(t, 1)
	inv := &Invocation{ID: "id-1", Payload: []byte(`{}`), Deadline: time.Now().Add(time.Minute),
		ClientContext: "{\n  \"custom\": {\"a\": 1}\r\n}", TraceID: "Root=1\r\nX-Injected: yes"}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	r, err := get(t.Context(), &http.Client{}, url(s, "invocation/next"))
	if err != nil || r.status != 200 {
		t.Fatalf("next: %v %v", r.status, err)
	}
	if got := r.header.Get("Lambda-Runtime-Client-Context"); got != `{   "custom": {"a": 1}  }` {
		t.Errorf("client context %q", got)
	}
	if r.header.Get("X-Injected") != "" || r.body != "{}" {
		t.Errorf("framing broken: %v %q", r.header, r.body)
	}
}

// TestLargePayloadsBothWays sends a 6 MB event and a 6 MB response, more than
// a socket buffer holds, so that writes and reads come back partial and wait
// for the socket.
func TestLargePayloadsBothWays(t *testing.T) {
	s := newTestServer(t, 1)
	c := &http.Client{}
	event := bytes.Repeat([]byte("e"), MaxResponseBytes)
	inv := &Invocation{ID: "big", Payload: event, Deadline: time.Now().Add(time.Minute)}
	if err := s.Submit(inv); err != nil {
		t.Fatal(err)
	}
	r, err := get(context.Background(), c, url(s, "invocation/next"))
	if err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.body != string(event) {
		t.Fatalf("next = %d, %d bytes", r.status, len(r.body))
	}
	answer := strings.Repeat("r", MaxResponseBytes)
	if st, body := post(c, url(s, "invocation/big/response"), answer, nil); st != 202 {
		t.Fatalf("response = %d %s", st, body)
	}
	if o := <-inv.Done(); string(o.Payload) != answer || o.Error {
		t.Fatalf("outcome: error %v, %d bytes", o.Error, len(o.Payload))
	}
}
