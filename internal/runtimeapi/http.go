package runtimeapi

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strconv"
)

// A small HTTP/1.1 implementation for the Runtime API's four endpoints: one
// goroutine per connection reads a request, runs it and writes the whole
// response with one write. It has no background reader and no per-request
// goroutine, context or header map (the costs net/http pays on every
// request), and it never closes a keep-alive connection on its own.

// Limits on what a runtime may send.
const (
	maxLine        = 16 << 10 // request line or header line
	maxHeaderBytes = 64 << 10
)

var (
	errMalformed = errors.New("runtimeapi: malformed request")
	errTooLarge  = errors.New("runtimeapi: body too large")
)

// request is the part of an HTTP request the Runtime API looks at.
type request struct {
	method        string
	path          string
	errorType     string // Lambda-Runtime-Function-Error-Type (header or trailer)
	errorBody     []byte // Lambda-Runtime-Function-Error-Body trailer, base64-decoded
	contentType   string // Content-Type
	streaming     bool   // Lambda-Runtime-Function-Response-Mode: streaming
	contentLength int64  // -1 when absent
	chunked       bool
	expect        bool // Expect: 100-continue
	close         bool // the client asked to close, or HTTP/1.0 without keep-alive
}

// readLine reads one CRLF- or LF-terminated line without the terminator, of
// at most maxLine bytes. A line that fits the reader's buffer is returned in
// place (valid until the next read); a longer one (aws-lambda-go's base64
// error-body trailer, its X-Ray error cause) is gathered into a new slice.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		line, err = readLongLine(br, line)
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readLongLine finishes a line whose start filled the reader's buffer.
func readLongLine(br *bufio.Reader, start []byte) ([]byte, error) {
	long := append(make([]byte, 0, 2*len(start)), start...)
	for {
		more, err := br.ReadSlice('\n')
		if len(long)+len(more) > maxLine+2 { // the line and its CRLF
			return nil, errMalformed
		}
		long = append(long, more...)
		if err != bufio.ErrBufferFull {
			return long, err
		}
	}
}

// readRequestHead reads the request line and the headers.
func readRequestHead(br *bufio.Reader, req *request) error {
	*req = request{contentLength: -1}
	var line []byte
	var err error
	for {
		// Tolerate empty lines before a request (RFC 9112 §2.2).
		if line, err = readLine(br); err != nil {
			return err
		}
		if len(line) > 0 {
			break
		}
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return errMalformed
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errMalformed
	}
	target, proto := rest[:sp2], rest[sp2+1:]
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		req.close = true
	default:
		return errMalformed
	}
	req.method = methodString(line[:sp1])
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	if len(target) == 0 || target[0] != '/' {
		// absolute-form: http://host/path
		if i := bytes.Index(target, []byte("://")); i > 0 {
			target = target[i+3:]
			if j := bytes.IndexByte(target, '/'); j >= 0 {
				target = target[j:]
			} else {
				target = []byte("/")
			}
		} else {
			return errMalformed
		}
	}
	req.path = string(target)

	total := 0
	var te bool
	for {
		line, err := readLine(br)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			break
		}
		total += len(line)
		if total > maxHeaderBytes {
			return errMalformed
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errMalformed
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (req.contentLength >= 0 && req.contentLength != n) {
				return errMalformed
			}
			req.contentLength = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return errMalformed // no other coding is used by runtimes
			}
			te = true
		case equalFold(name, "expect"):
			req.expect = equalFold(value, "100-continue")
		case equalFold(name, "connection"):
			if equalFold(value, "close") {
				req.close = true
			} else if equalFold(value, "keep-alive") {
				req.close = false
			}
		case equalFold(name, hdrErrorType):
			req.errorType = string(value)
		case equalFold(name, "content-type"):
			req.contentType = string(value)
		case equalFold(name, hdrResponseMode):
			req.streaming = equalFold(value, "streaming")
		}
	}
	if te {
		if req.contentLength >= 0 {
			return errMalformed
		}
		req.chunked = true
	}
	return nil
}

// readBody reads the request body into dst (reused), up to limit bytes.
// Beyond the limit it returns errTooLarge and the connection cannot be
// reused.
func readBody(br *bufio.Reader, req *request, dst []byte, limit int64) ([]byte, error) {
	dst = dst[:0]
	if req.chunked {
		return readChunked(br, req, dst, limit)
	}
	n := req.contentLength
	if n <= 0 {
		return dst, nil
	}
	if n > limit {
		return dst, errTooLarge
	}
	if int64(cap(dst)) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	if _, err := io.ReadFull(br, dst); err != nil {
		return dst[:0], io.ErrUnexpectedEOF
	}
	return dst, nil
}

func readChunked(br *bufio.Reader, req *request, dst []byte, limit int64) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return dst, eofIsUnexpected(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 63)
		if err != nil {
			return dst, errMalformed
		}
		if size == 0 {
			return dst, readTrailers(br, req)
		}
		if int64(len(dst))+int64(size) > limit {
			return dst, errTooLarge
		}
		start := len(dst)
		dst = append(dst, make([]byte, size)...)
		if _, err := io.ReadFull(br, dst[start:]); err != nil {
			return dst, io.ErrUnexpectedEOF
		}
		crlf, err := readLine(br)
		if err != nil || len(crlf) != 0 {
			return dst, errMalformed
		}
	}
}

// readTrailers reads the trailer section after the last chunk; aws-lambda-go
// reports a failed streamed response there.
func readTrailers(br *bufio.Reader, req *request) error {
	total := 0
	for {
		line, err := readLine(br)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if len(line) == 0 {
			return nil
		}
		total += len(line)
		if total > maxHeaderBytes {
			return errMalformed
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errMalformed
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "lambda-runtime-function-error-type"):
			req.errorType = string(value)
		case equalFold(name, "lambda-runtime-function-error-body"):
			if b, err := base64.StdEncoding.DecodeString(string(value)); err == nil {
				req.errorBody = b
			}
		}
	}
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// equalFold compares an ASCII header token with a lower- or mixed-case name.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// methodString avoids an allocation for the methods the API uses.
func methodString(b []byte) string {
	switch string(b) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	}
	return string(b)
}

// statusLine returns the status line of the codes the API answers with.
func statusLine(code int) string {
	switch code {
	case 200:
		return "HTTP/1.1 200 OK\r\n"
	case 202:
		return "HTTP/1.1 202 Accepted\r\n"
	case 400:
		return "HTTP/1.1 400 Bad Request\r\n"
	case 403:
		return "HTTP/1.1 403 Forbidden\r\n"
	case 404:
		return "HTTP/1.1 404 Not Found\r\n"
	case 405:
		return "HTTP/1.1 405 Method Not Allowed\r\n"
	case 413:
		return "HTTP/1.1 413 Request Entity Too Large\r\n"
	case 500:
		return "HTTP/1.1 500 Internal Server Error\r\n"
	case 503:
		return "HTTP/1.1 503 Service Unavailable\r\n"
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " Status\r\n"
}
