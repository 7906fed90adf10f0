package runtimeapi

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/shoal-dev/shoal/internal/guard"
	"github.com/shoal-dev/shoal/internal/rawio"
)

const (
	prefix         = "/2018-06-01/runtime/"
	invocationPath = "invocation/"
)

type route int

const (
	routeNotFound route = iota
	routeNext
	routeResponse
	routeError
	routeInitError
)

// parsePath maps a request path to its endpoint and, for per-invocation
// endpoints, the request id. Ids are opaque: any non-empty segment without
// a slash.
func parsePath(p string) (route, string) {
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok {
		return routeNotFound, ""
	}
	if rest == "init/error" {
		return routeInitError, ""
	}
	rest, ok = strings.CutPrefix(rest, invocationPath)
	if !ok {
		return routeNotFound, ""
	}
	if rest == "next" {
		return routeNext, ""
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return routeNotFound, ""
	}
	id, what := rest[:slash], rest[slash+1:]
	switch what {
	case "response":
		return routeResponse, id
	case "error":
		return routeError, id
	}
	return routeNotFound, ""
}

// maxDiscard bounds how much of an oversized body is read and dropped.
const maxDiscard = 64 << 20

// conn is one runtime connection. Only its own goroutine touches it.
type conn struct {
	s   *Server
	br  *bufio.Reader
	w   io.Writer
	out []byte // response being built, reused
	// piece is the buffer a streamed response is copied through (stream.go).
	piece []byte
	// peerClosed reports, without blocking, whether the runtime has closed
	// the connection (checked before handing out an invocation).
	peerClosed func() bool
	// held lists invocations handed out on this connection and not yet
	// answered on it (only with Config.WorkerConnections).
	held []string
}

// connPool keeps the buffers of ended connections. aws-lambda-go closes a
// connection whenever more than two would sit idle in its pool, so with many
// slots busy at once most of its connections carry a request or two.
var connPool = sync.Pool{New: func() any {
	return &conn{br: bufio.NewReaderSize(nil, 4096), out: make([]byte, 0, 512)}
}}

func noPeerCheck() bool { return false }

func (s *Server) serveConn(nc net.Conn) {
	defer s.forget(nc)
	defer nc.Close()
	var rw io.ReadWriter = nc
	if !s.cfg.plainIO {
		rw = rawio.New(nc)
	}
	c := connPool.Get().(*conn)
	// A request that panics is answered 500 and its connection closed; the
	// conn, in whatever state, is not reused. The invocations a worker
	// connection held end as its exit would end them (serve's orphan).
	defer guard.Recover(s.logger, "Runtime API connection", func(error) {
		c.writeError(500, "ServiceException", "An internal error occurred.", true)
	})
	c.s, c.w, c.peerClosed = s, rw, noPeerCheck
	c.br.Reset(rw)
	if tc, ok := nc.(syscall.Conn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			c.peerClosed = func() bool { return rawio.PeerClosed(rc) }
		}
	}
	c.serve()
	c.s, c.w, c.peerClosed, c.held = nil, nil, nil, c.held[:0]
	c.br.Reset(nil)
	connPool.Put(c)
}

// serve runs requests until the connection ends or must close.
func (c *conn) serve() {
	defer c.orphan()
	var req request
	for {
		if err := readRequestHead(c.br, &req); err != nil {
			if errors.Is(err, errMalformed) {
				c.writeError(400, "InvalidRequest", "malformed request", true)
			}
			return
		}
		if !c.handle(&req) || req.close {
			return
		}
	}
}

// orphan ends the invocations a dead worker held.
func (c *conn) orphan() {
	for _, id := range c.held {
		c.s.settle(id, Outcome{Error: true, ErrorType: "Runtime.ExitError", WorkerExited: true})
	}
	c.held = nil
}

// answered drops id from the held list.
func (c *conn) answered(id string) {
	for i, h := range c.held {
		if h == id {
			c.held = append(c.held[:i], c.held[i+1:]...)
			return
		}
	}
}

// handle runs one request; it reports whether the connection can go on.
func (c *conn) handle(req *request) bool {
	rt, id := parsePath(req.path)
	want := "POST"
	if rt == routeNext {
		want = "GET"
	}
	if rt == routeNotFound {
		return c.discardAnd(req, 404, "NotFound", "unknown Runtime API path")
	}
	if req.method != want {
		return c.discardAnd(req, 405, "MethodNotAllowed", "method not allowed")
	}
	if rt == routeNext {
		if req.contentLength > 0 || req.chunked {
			if _, err := readBody(c.br, req, nil, 1<<20); err != nil {
				return false
			}
		}
		return c.s.handleNext(c)
	}
	if req.expect {
		if _, err := io.WriteString(c.w, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return false
		}
	}
	if rt == routeResponse {
		if inv := c.s.outstanding(id); inv != nil && inv.Stream != nil {
			return c.handleStreamed(req, id, inv)
		}
	}
	body, err := readBody(c.br, req, nil, MaxResponseBytes)
	if errors.Is(err, errTooLarge) {
		// Read what the client is still sending (within reason) so that it
		// sees the answer rather than a reset connection.
		if !req.chunked && req.contentLength <= maxDiscard {
			_, _ = io.CopyN(io.Discard, c.br, req.contentLength)
		}
		if rt == routeResponse && c.s.settle(id, Outcome{Payload: tooLargePayload, Error: true, ErrorType: "Function.ResponseSizeTooLarge"}) {
			c.writeError(413, "RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes).", true)
			return false
		}
		c.writeError(413, "RequestEntityTooLarge", "Exceeded maximum allowed payload size (6291556 bytes).", true)
		return false
	}
	if err != nil {
		if errors.Is(err, errMalformed) {
			c.writeError(400, "InvalidRequest", "malformed body", true)
		}
		return false
	}
	if c.s.cfg.WorkerConnections && id != "" {
		c.answered(id)
	}
	var status int
	switch rt {
	case routeResponse:
		status = c.s.handleResponse(id, req, body)
	case routeError:
		status = c.s.handleError(id, req, body)
	case routeInitError:
		status = c.s.handleInitError(req, body)
	}
	if status == 202 {
		return c.writeAccepted()
	}
	c.writeError(status, "InvalidRequestID", "Invalid request ID", false)
	return true
}

// discardAnd reads and drops the body, then answers an error.
func (c *conn) discardAnd(req *request, status int, errorType, msg string) bool {
	if req.expect {
		// The client has not sent the body yet; do not invite it.
		c.writeError(status, errorType, msg, true)
		return false
	}
	if _, err := readBody(c.br, req, nil, MaxResponseBytes); err != nil {
		c.writeError(status, errorType, msg, true)
		return false
	}
	c.writeError(status, errorType, msg, false)
	return true
}

var acceptedResponse = []byte("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n" + `{"status":"OK"}` + "\n")

func (c *conn) writeAccepted() bool {
	_, err := c.w.Write(acceptedResponse)
	return err == nil
}

// writeError answers with Lambda's Runtime API error shape.
func (c *conn) writeError(status int, errorType, msg string, closeConn bool) {
	body := errorJSON(errorType, msg)
	b := append(c.out[:0], statusLine(status)...)
	b = append(b, "Content-Type: application/json\r\n"...)
	if closeConn {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.out = b[:0]
	_, _ = c.w.Write(b)
}
