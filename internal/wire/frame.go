package wire

// Frames. Every frame is
//
//	length  uint32 big-endian: the bytes after this field (type, id, body)
//	type    uint8
//	id      uint64 big-endian: the request id, chosen by the client
//	body    length-9 bytes, by type:
//
//	frameInvoke  (client → server)  envID, RequestID, InvokedARN, ClientContext,
//	                                CognitoIdentity, TraceID (strings), flags (byte:
//	                                1 = TailLog, 2 = the caller streams), deadline
//	                                (varint Unix ns, 0 = none), payload (the rest)
//	frameCancel  (client → server)  empty: the caller went away
//	frameResult  (server → client)  FunctionError, ErrorType, LogTail, ContentType
//	                                (strings), Duration, BilledDuration, InitDuration,
//	                                CPUTime (varint ns), MaxMemoryUsedMB (uvarint),
//	                                flags (byte: 1 = Replace, 2 = Streamed), payload
//	                                (the rest)
//	frameRefused (server → client)  reason, message (strings)
//	frameError   (server → client)  message (string)
//	frameStart   (server → client)  content type (string): a streamed response begins
//	frameChunk   (server → client)  a piece of a streamed response (the whole body)
//	frameCredit  (client → server)  uvarint: bytes of stream the caller has taken
//
// A streamed response (stream.go) is frameStart, frameChunks, then the
// frameResult; the server sends no more chunk bytes than the credit the client
// has granted (streamWindow to begin with).
//
// A string is a uvarint length and its bytes. Payloads are carried as they are:
// nothing on this path encodes or decodes JSON.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shoal-dev/shoal/internal/env"
)

const (
	frameInvoke  byte = 1
	frameCancel  byte = 2
	frameResult  byte = 3
	frameRefused byte = 4
	frameError   byte = 5
	frameStart   byte = 6
	frameChunk   byte = 7
	frameCredit  byte = 8
)

const headerLen = 4 + 1 + 8

// MaxFrame bounds the length of a frame. Lambda's synchronous payloads are at
// most 6 MB each way; the rest is headroom for the fields around them.
const MaxFrame = 16 << 20

// ErrFrameTooLarge is returned for a frame whose length exceeds MaxFrame.
var ErrFrameTooLarge = errors.New("wire: frame too large")

// errShort is returned when a body ends before its fields do.
var errShort = errors.New("wire: truncated frame body")

// frame is one decoded frame; body aliases the reader's buffer until the next read.
type frame struct {
	typ  byte
	id   uint64
	body []byte
}

// appendHeader appends a header whose length field is patched by finish.
func appendHeader(b []byte, typ byte, id uint64) []byte {
	b = append(b, 0, 0, 0, 0, typ)
	return binary.BigEndian.AppendUint64(b, id)
}

// finish writes the length field of the frame that starts at start.
func finish(b []byte, start int) ([]byte, error) {
	n := len(b) - start - 4
	if n > MaxFrame {
		return b[:start], ErrFrameTooLarge
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendInvoke appends an invoke frame.
func appendInvoke(b []byte, id uint64, envID string, inv *env.Invocation) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, frameInvoke, id)
	b = appendString(b, envID)
	b = appendString(b, inv.RequestID)
	b = appendString(b, inv.InvokedARN)
	b = appendString(b, inv.ClientContext)
	b = appendString(b, inv.CognitoIdentity)
	b = appendString(b, inv.TraceID)
	var flags byte
	if inv.TailLog {
		flags |= 1
	}
	if inv.Stream != nil {
		flags |= 2
	}
	b = append(b, flags)
	var dl int64
	if !inv.Deadline.IsZero() {
		dl = inv.Deadline.UnixNano()
	}
	b = binary.AppendVarint(b, dl)
	b = append(b, inv.Payload...)
	return finish(b, start)
}

// appendResult appends a result frame.
func appendResult(b []byte, id uint64, r *env.Result) ([]byte, error) {
	start := len(b)
	b = appendHeader(b, frameResult, id)
	b = appendString(b, r.FunctionError)
	b = appendString(b, r.ErrorType)
	b = appendBytes(b, r.LogTail)
	b = appendString(b, r.ContentType)
	b = binary.AppendVarint(b, int64(r.Duration))
	b = binary.AppendVarint(b, int64(r.BilledDuration))
	b = binary.AppendVarint(b, int64(r.InitDuration))
	b = binary.AppendVarint(b, int64(r.CPUTime))
	b = binary.AppendUvarint(b, uint64(max(r.MaxMemoryUsedMB, 0)))
	var flags byte
	if r.Replace {
		flags |= 1
	}
	if r.Streamed {
		flags |= 2
	}
	b = append(b, flags)
	b = append(b, r.Payload...)
	return finish(b, start)
}

// appendRefused appends a refusal.
func appendRefused(b []byte, id uint64, reason, msg string) []byte {
	start := len(b)
	b = appendHeader(b, frameRefused, id)
	b = appendString(b, reason)
	b = appendString(b, msg)
	b, _ = finish(b, start)
	return b
}

// appendError appends a handler error.
func appendError(b []byte, id uint64, msg string) []byte {
	start := len(b)
	b = appendHeader(b, frameError, id)
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	b = appendString(b, msg)
	b, _ = finish(b, start)
	return b
}

// appendStart appends the start of a streamed response.
func appendStart(b []byte, id uint64, contentType string) []byte {
	start := len(b)
	b = appendHeader(b, frameStart, id)
	b = appendString(b, contentType)
	b, _ = finish(b, start)
	return b
}

// appendChunk appends a piece of a streamed response (at most maxChunk bytes).
func appendChunk(b []byte, id uint64, p []byte) []byte {
	start := len(b)
	b = appendHeader(b, frameChunk, id)
	b = append(b, p...)
	b, _ = finish(b, start)
	return b
}

// appendCredit appends a grant of n more bytes of stream.
func appendCredit(b []byte, id uint64, n int) []byte {
	start := len(b)
	b = appendHeader(b, frameCredit, id)
	b = binary.AppendUvarint(b, uint64(n))
	b, _ = finish(b, start)
	return b
}

// decodeCredit decodes a credit body.
func decodeCredit(body []byte) (int, error) {
	d := decoder{b: body}
	n := d.uvarint()
	if d.err != nil || n > streamWindow {
		return 0, fmt.Errorf("wire: credit frame: bad grant")
	}
	return int(n), nil
}

// appendCancel appends a cancel frame.
func appendCancel(b []byte, id uint64) []byte {
	start := len(b)
	b = appendHeader(b, frameCancel, id)
	b, _ = finish(b, start)
	return b
}

// frameReader reads frames from r into a buffer it reuses.
type frameReader struct {
	r   io.Reader
	hdr [headerLen]byte
	buf []byte
}

// next reads one frame. The body is valid until the following call.
func (fr *frameReader) next() (frame, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(fr.hdr[:4])
	if n > MaxFrame {
		return frame{}, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	if n < headerLen-4 {
		return frame{}, fmt.Errorf("wire: frame length %d below the header's", n)
	}
	f := frame{typ: fr.hdr[4], id: binary.BigEndian.Uint64(fr.hdr[5:])}
	size := int(n) - (headerLen - 4)
	if cap(fr.buf) < size {
		fr.buf = make([]byte, size)
	}
	fr.buf = fr.buf[:size]
	if _, err := io.ReadFull(fr.r, fr.buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	f.body = fr.buf
	return f, nil
}

// decoder reads fields from a body.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errShort
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// rest copies what is left of the body.
func (d *decoder) rest() []byte {
	if d.err != nil || len(d.b) == 0 {
		return nil
	}
	out := make([]byte, len(d.b))
	copy(out, d.b)
	d.b = nil
	return out
}

// decodeInvoke decodes an invoke body; the returned values do not alias body.
// streams reports that the caller streams (inv.Stream is left for the server to set).
func decodeInvoke(body []byte) (envID string, inv env.Invocation, streams bool, err error) {
	d := decoder{b: body}
	envID = d.string()
	inv.RequestID = d.string()
	inv.InvokedARN = d.string()
	inv.ClientContext = d.string()
	inv.CognitoIdentity = d.string()
	inv.TraceID = d.string()
	flags := d.byte()
	inv.TailLog = flags&1 != 0
	streams = flags&2 != 0
	if dl := d.varint(); dl != 0 {
		inv.Deadline = time.Unix(0, dl)
	}
	inv.Payload = d.rest()
	if d.err != nil {
		return "", env.Invocation{}, false, fmt.Errorf("wire: invoke frame: %w", d.err)
	}
	return envID, inv, streams, nil
}

// decodeResult decodes a result body; the returned value does not alias body.
func decodeResult(body []byte) (env.Result, error) {
	d := decoder{b: body}
	var r env.Result
	r.FunctionError = d.string()
	r.ErrorType = d.string()
	if t := d.bytes(); len(t) > 0 {
		r.LogTail = append([]byte(nil), t...)
	}
	r.ContentType = d.string()
	r.Duration = time.Duration(d.varint())
	r.BilledDuration = time.Duration(d.varint())
	r.InitDuration = time.Duration(d.varint())
	r.CPUTime = time.Duration(d.varint())
	mem := d.uvarint()
	if mem > 1<<31 {
		d.err = errors.New("memory out of range")
	}
	r.MaxMemoryUsedMB = int(mem)
	flags := d.byte()
	r.Replace = flags&1 != 0
	r.Streamed = flags&2 != 0
	r.Payload = d.rest()
	if d.err != nil {
		return env.Result{}, fmt.Errorf("wire: result frame: %w", d.err)
	}
	return r, nil
}

// decodeRefused decodes a refusal body.
func decodeRefused(body []byte) (*RefusedError, error) {
	d := decoder{b: body}
	e := &RefusedError{Reason: d.string(), Message: d.string()}
	if d.err != nil {
		return nil, fmt.Errorf("wire: refused frame: %w", d.err)
	}
	return e, nil
}

// decodeError decodes a handler error body.
func decodeError(body []byte) (*RemoteError, error) {
	d := decoder{b: body}
	e := &RemoteError{Message: d.string()}
	if d.err != nil {
		return nil, fmt.Errorf("wire: error frame: %w", d.err)
	}
	return e, nil
}
