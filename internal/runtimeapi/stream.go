package runtimeapi

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Streamed responses. When the caller of an invocation streams
// (InvokeWithResponseStream, a function URL in RESPONSE_STREAM mode), the body
// of the runtime's POST …/response goes to the invocation's ResponseStream as
// it arrives, chunk by chunk, instead of being collected: a runtime that
// streams (Lambda-Runtime-Function-Response-Mode: streaming, chunked, with
// the error trailers) reaches the caller as it writes, and a runtime that
// answers at once reaches it in one piece. A caller that does not stream gets
// the whole body as before, streamed or not, within the buffered limit.

// ResponseStream receives a response as the runtime sends it. Start is called
// once, before the first Write, with the response's Content-Type; Write must
// not keep p. Both run on the runtime's connection, so a slow Write holds the
// runtime back, as a slow client holds back a streaming function on Lambda.
// Once Write fails, the rest of the body is read and dropped.
type ResponseStream interface {
	Start(contentType string)
	Write(p []byte) (int, error)
}

// DefaultStreamContentType is the Content-Type of a streamed response whose
// runtime sent none, as Lambda's.
const DefaultStreamContentType = "application/octet-stream"

// streamPiece bounds what one Write carries.
const streamPiece = 32 << 10

// maxStreamed is MaxStreamedResponseBytes (a variable so that tests can lower it).
var maxStreamed int64 = MaxStreamedResponseBytes

// tooLargeStreamPayload is what the caller receives when a streamed response
// passes MaxStreamedResponseBytes.
var tooLargeStreamPayload = []byte(`{"errorMessage":"Response payload size exceeded maximum allowed payload size (` +
	strconv.Itoa(MaxStreamedResponseBytes) + ` bytes).","errorType":"Function.ResponseSizeTooLarge"}`)

// streamLimit is the largest body a response may have for a caller that
// streams: Lambda's streaming limit when the runtime streams (chunked or in
// streaming mode), the buffered one when it sends a length.
func streamLimit(req *request) int64 {
	if req.chunked || req.streaming {
		return maxStreamed
	}
	return MaxResponseBytes
}

// handleStreamed serves POST …/response for an invocation whose caller streams.
// It reports whether the connection can go on.
func (c *conn) handleStreamed(req *request, id string, inv *Invocation) bool {
	o, err := c.streamResponse(req, inv)
	switch {
	case errors.Is(err, errTooLarge):
		if c.s.cfg.WorkerConnections {
			c.answered(id)
		}
		c.s.settle(id, Outcome{Payload: tooLargeStreamPayload, Error: true, ErrorType: "Function.ResponseSizeTooLarge",
			Streamed: true, Bytes: o.Bytes, ContentType: o.ContentType})
		c.writeError(413, "RequestEntityTooLarge", "Exceeded maximum allowed payload size ("+strconv.FormatInt(streamLimit(req), 10)+" bytes).", true)
		return false
	case err != nil:
		if errors.Is(err, errMalformed) {
			c.writeError(400, "InvalidRequest", "malformed body", true)
		}
		return false
	}
	if c.s.cfg.WorkerConnections {
		c.answered(id)
	}
	if !c.s.settle(id, o) {
		c.writeError(400, "InvalidRequestID", "Invalid request ID", false)
		return true
	}
	return c.writeAccepted()
}

// streamResponse copies the body to inv.Stream and returns the outcome.
func (c *conn) streamResponse(req *request, inv *Invocation) (Outcome, error) {
	ct := req.contentType
	if ct == "" {
		ct = DefaultStreamContentType
	}
	o := Outcome{Streamed: true, ContentType: ct}
	limit := streamLimit(req)
	if !req.chunked && req.contentLength > limit {
		if req.contentLength <= maxDiscard {
			_, _ = io.CopyN(io.Discard, c.br, req.contentLength)
		}
		return o, errTooLarge
	}
	if cap(c.piece) < streamPiece {
		c.piece = make([]byte, streamPiece)
	}
	sw := streamWriter{w: inv.Stream, buf: c.piece[:streamPiece], limit: limit}
	inv.Stream.Start(ct)
	var err error
	if req.chunked {
		err = sw.copyChunked(c.br, req)
	} else if req.contentLength > 0 {
		err = sw.copyN(c.br, req.contentLength)
	}
	o.Bytes = sw.n
	if err != nil {
		return o, err
	}
	if req.errorType != "" {
		payload := req.errorBody
		if payload == nil {
			_, payload = errorPayload(req.errorType, nil)
		}
		o.Error, o.ErrorType, o.Payload = true, req.errorType, payload
	}
	return o, nil
}

// streamWriter copies a body to a ResponseStream in pieces as they arrive.
type streamWriter struct {
	w      ResponseStream
	buf    []byte
	n      int64 // bytes of body so far
	limit  int64
	failed bool // the stream refused a write: the rest is dropped
}

// copyN copies n bytes.
func (sw *streamWriter) copyN(r io.Reader, n int64) error {
	for n > 0 {
		k, err := r.Read(sw.buf[:min(n, int64(len(sw.buf)))])
		if k > 0 {
			n -= int64(k)
			if err := sw.deliver(sw.buf[:k]); err != nil {
				return err
			}
		}
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			if n > 0 {
				return err
			}
		}
	}
	return nil
}

// copyChunked copies a chunked body, then reads its trailers into req.
func (sw *streamWriter) copyChunked(br *bufio.Reader, req *request) error {
	for {
		line, err := readLine(br)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 63)
		if err != nil {
			return errMalformed
		}
		if size == 0 {
			return readTrailers(br, req)
		}
		if err := sw.copyN(br, int64(size)); err != nil {
			return err
		}
		crlf, err := readLine(br)
		if err != nil || len(crlf) != 0 {
			return errMalformed
		}
	}
}

// deliver writes p to the stream unless it failed, within the limit.
func (sw *streamWriter) deliver(p []byte) error {
	if sw.n+int64(len(p)) > sw.limit {
		return errTooLarge
	}
	sw.n += int64(len(p))
	if sw.failed {
		return nil
	}
	if _, err := sw.w.Write(p); err != nil {
		sw.failed = true
	}
	return nil
}
