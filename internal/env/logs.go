package env

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/logs"
	"github.com/shoal-dev/shoal/internal/rawio"
)

// tailBytes is how much of an invocation's log X-Amz-Log-Result carries.
const tailBytes = 4096

// maxLine splits lines longer than this into several records.
const maxLine = 256 << 10

// logPipe reads an environment's stdout and stderr (one pipe) line by line
// and hands each line to the sink. It also feeds tails: the init log and,
// with one slot, the current invocation's log. With several slots the lines
// of concurrent invocations interleave, so an invocation that asked for its
// tail gets the lines that name its request id (byID): the JSON records of
// Lambda's runtimes carry "requestId", their text lines carry the id in a
// tab-separated field.
//
// Lines written by the runtime before it answers an invocation are in the
// pipe when the answer arrives; drain reads them synchronously so they land
// between START and END.
//
// With the JSON log format it drops the function's lines below the
// application log level (minApp); the platform's own lines are never
// filtered here.
//
// Concurrency: r, raw, sink, clock, drainFn, minApp and the names are
// immutable; mu guards everything else. The reader goroutine and drain both
// read the pipe under mu.
type logPipe struct {
	r        *os.File
	raw      syscall.RawConn
	sink     LogSink
	clock    clock.Clock
	function string
	version  string
	stream   string
	drainFn  func(fd uintptr) // p.drainFd, made once
	minApp   logLevel         // 0: keep every line

	mu      sync.Mutex
	buf     []byte
	partial []byte
	eof     bool
	initLog *tail // until the first invocation
	cur     *tail // the current invocation's tail (one slot, TailLog), or nil
	byID    map[string]*tail
	done    chan struct{}
}

// tail keeps the last tailBytes of log text.
type tail struct{ b []byte }

func (t *tail) add(line string) {
	t.b = append(t.b, line...)
	t.b = append(t.b, '\n')
	if len(t.b) > 4*tailBytes {
		t.b = append(t.b[:0], t.b[len(t.b)-tailBytes:]...)
	}
}

func (t *tail) bytes() []byte {
	if t == nil {
		return nil
	}
	b := t.b
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
	}
	return bytes.Clone(b)
}

func newLogPipe(r *os.File, sink LogSink, clk clock.Clock, fn, version, stream string, minApp logLevel) (*logPipe, error) {
	raw, err := r.SyscallConn()
	if err != nil {
		return nil, err
	}
	p := &logPipe{
		r: r, raw: raw, sink: sink, clock: clk, function: fn, version: version, stream: stream, minApp: minApp,
		buf: make([]byte, 32<<10), initLog: &tail{}, done: make(chan struct{}),
	}
	p.drainFn = p.drainFd
	go p.run()
	return p, nil
}

// run reads until the write ends are all closed.
func (p *logPipe) run() {
	defer close(p.done)
	for {
		var eof bool
		err := p.raw.Read(func(fd uintptr) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			n, err := rawio.Read(fd, p.buf)
			if err == syscall.EAGAIN {
				return false
			}
			if n > 0 {
				p.feed(p.buf[:n])
			}
			if (n == 0 && err == 0) || (err != 0 && err != syscall.EINTR) {
				p.flushPartial()
				p.eof = true
				eof = true
			}
			return true
		})
		if err != nil || eof {
			return
		}
	}
}

// drain reads whatever the pipe holds now, without blocking.
func (p *logPipe) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drainLocked()
}

func (p *logPipe) drainLocked() {
	if p.eof {
		return
	}
	_ = p.raw.Control(p.drainFn)
	p.flushPartial()
}

// drainFd reads the pipe until it is empty. Called with mu held. Its reads
// are raw system calls (rawio.Read): the one that finds the pipe empty on
// every invocation's END costs no P hand-off.
func (p *logPipe) drainFd(fd uintptr) {
	for {
		n, err := rawio.Read(fd, p.buf)
		if n > 0 {
			p.feed(p.buf[:n])
		}
		if n <= 0 || err != 0 {
			return
		}
	}
}

// feed splits data into lines. Called with mu held.
func (p *logPipe) feed(data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			p.partial = append(p.partial, data...)
			if len(p.partial) >= maxLine {
				p.flushPartial()
			}
			return
		}
		if len(p.partial) > 0 {
			p.partial = append(p.partial, data[:i]...)
			p.appLocked(p.partial)
			p.partial = p.partial[:0]
		} else {
			p.appLocked(data[:i])
		}
		data = data[i+1:]
	}
}

func (p *logPipe) flushPartial() {
	if len(p.partial) > 0 {
		p.appLocked(p.partial)
		p.partial = p.partial[:0]
	}
}

// appLocked delivers one line of the function's, unless its level is below
// minApp. Called with mu held.
func (p *logPipe) appLocked(line []byte) {
	if p.minApp > 0 && !keepLine(line, p.minApp) {
		return
	}
	p.lineLocked(string(line))
}

// lineLocked delivers one line. Called with mu held.
func (p *logPipe) lineLocked(line string) {
	if len(p.byID) > 0 {
		if t := p.byID[lineRequestID(line, p.byID)]; t != nil {
			t.add(line)
		}
	}
	p.sendLocked(line)
}

// sendLocked delivers one line to the init log, the one-slot tail and the
// sink. Called with mu held.
func (p *logPipe) sendLocked(line string) {
	if p.initLog != nil {
		p.initLog.add(line)
	}
	if p.cur != nil {
		p.cur.add(line)
	}
	if p.sink != nil {
		p.sink.WriteLog(logs.Record{Function: p.function, Version: p.version, Stream: p.stream,
			Time: p.clock.Now(), Message: line})
	}
}

// platform writes a line of the platform's own (START, END, REPORT, …),
// after draining what the runtime wrote before it when drain is set (one
// read syscall). t, when non-nil, also receives the line.
func (p *logPipe) platform(line string, t *tail, drain bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if drain {
		p.drainLocked()
	}
	if t != nil && t != p.cur {
		t.add(line)
	}
	p.sendLocked(line)
}

// watch feeds t, from now on, the lines that name request id (an invocation
// of a multi-slot environment that asked for its tail).
func (p *logPipe) watch(id string, t *tail) {
	p.mu.Lock()
	if p.byID == nil {
		p.byID = make(map[string]*tail)
	}
	p.byID[id] = t
	p.mu.Unlock()
}

// unwatch stops feeding the tail of request id.
func (p *logPipe) unwatch(id string) {
	p.mu.Lock()
	delete(p.byID, id)
	p.mu.Unlock()
}

// lineRequestID returns the request id a line names, among those of ids: the
// "requestId" string of a JSON record, or one of the first three
// tab-separated fields of a text line (Node.js writes "time\tid\tLEVEL\t…",
// Python "[LEVEL]\ttime\tid\t…"). It returns "" when the line names none.
func lineRequestID(line string, ids map[string]*tail) string {
	if i := strings.Index(line, `"requestId"`); i >= 0 {
		rest := strings.TrimLeft(line[i+len(`"requestId"`):], " ")
		if rest, ok := strings.CutPrefix(rest, ":"); ok {
			rest = strings.TrimLeft(rest, " ")
			if rest, ok := strings.CutPrefix(rest, `"`); ok {
				if id, _, ok := strings.Cut(rest, `"`); ok && ids[id] != nil {
					return id
				}
			}
		}
	}
	for range 3 {
		field, rest, ok := strings.Cut(line, "\t")
		if !ok {
			break
		}
		if ids[field] != nil {
			return field
		}
		line = rest
	}
	return ""
}

// begin marks the start of an invocation on a one-slot environment: lines
// from now on feed t (nil: none) and the init log stops. It returns the tail
// it displaced.
func (p *logPipe) begin(t *tail) (prev *tail) {
	p.mu.Lock()
	p.initLog = nil
	prev, p.cur = p.cur, t
	p.mu.Unlock()
	return prev
}

// restore makes t the current tail again (an invocation that began and was
// refused gives the tail back to the one it displaced).
func (p *logPipe) restore(t *tail) {
	p.mu.Lock()
	p.cur = t
	p.mu.Unlock()
}

// end stops feeding the current tail.
func (p *logPipe) end() {
	p.mu.Lock()
	p.cur = nil
	p.mu.Unlock()
}

// initTail returns the init log so far.
func (p *logPipe) initTail() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.initLog.bytes()
}
