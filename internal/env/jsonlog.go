package env

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/internal/jsonenc"
)

// Lambda's JSON log format: the levels of application lines and the platform's
// system records. docs/decisions/log-format.md says where each shape and level
// comes from.

// logLevel orders Lambda's log levels; 0 is "not a level".
type logLevel int8

const (
	levelTrace logLevel = iota + 1
	levelDebug
	levelInfo
	levelWarn
	levelError
	levelFatal
)

// parseLevel reads a level name, in any case. WARNING and CRITICAL, the names
// Python's logging writes in Lambda's JSON records, are WARN and FATAL.
func parseLevel(s string) (logLevel, bool) {
	switch strings.ToUpper(s) {
	case "TRACE":
		return levelTrace, true
	case "DEBUG":
		return levelDebug, true
	case "INFO":
		return levelInfo, true
	case "WARN", "WARNING":
		return levelWarn, true
	case "ERROR":
		return levelError, true
	case "FATAL", "CRITICAL":
		return levelFatal, true
	}
	return 0, false
}

// keepLine reports whether a line the function wrote is at or above min, as
// lineLevel would decide, without parsing most lines: a line's level is INFO
// unless it is a JSON object whose "level" names another, so when the level a
// quick scan finds (scanLevel) and INFO fall on the same side of min, that is
// the answer; only otherwise, or when the scan cannot tell, is it parsed.
func keepLine(line []byte, min logLevel) bool {
	if min <= levelTrace {
		return true
	}
	if quick, ok := scanLevel(line); ok && (quick >= min) == (levelInfo >= min) {
		return levelInfo >= min
	}
	return lineLevel(line) >= min
}

// levelKey is the key lineLevel reads.
var levelKey = []byte(`"level"`)

// scanLevel is the level named by a line's one "level" key followed by a
// string (INFO when the line has no such key or the string is not a level),
// found without parsing. ok is false when only a parse can tell: several
// "level" keys, a value that is not a string, or any escape in the line (an
// escaped key or value reads differently once decoded).
func scanLevel(line []byte) (l logLevel, ok bool) {
	i := bytes.Index(line, levelKey)
	if i < 0 {
		return levelInfo, true
	}
	rest := line[i+len(levelKey):]
	if bytes.Contains(rest, levelKey) || bytes.IndexByte(line, '\\') >= 0 {
		return 0, false
	}
	rest = bytes.TrimLeft(rest, " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return 0, false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return 0, false
	}
	j := bytes.IndexByte(rest[1:], '"')
	if j < 0 {
		return 0, false
	}
	if l, ok := parseLevel(string(rest[1 : 1+j])); ok {
		return l, true
	}
	return levelInfo, true
}

// lineLevel is the level of one line the function wrote: the "level" key of a
// line that is a JSON object, else (no such key, not a level, not JSON) INFO.
func lineLevel(line []byte) logLevel {
	if !bytes.Contains(line, []byte(`"level"`)) {
		return levelInfo
	}
	if t := bytes.TrimLeft(line, " \t\r\n"); len(t) < 2 || t[0] != '{' || !json.Valid(line) {
		return levelInfo
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(line, &obj) != nil {
		return levelInfo
	}
	var name string
	if json.Unmarshal(obj["level"], &name) != nil {
		return levelInfo
	}
	if l, ok := parseLevel(name); ok {
		return l
	}
	return levelInfo
}

// logLevels are an environment's filters; zero values keep everything.
type logLevels struct {
	json bool     // the JSON log format: platform records instead of text lines
	sys  logLevel // platform records below it are not written
	app  logLevel // function lines below it are dropped (0: none are)
}

func levelsFor(c LogConfig) logLevels {
	if c.Format != LogFormatJSON {
		return logLevels{}
	}
	l := logLevels{json: true, sys: levelInfo, app: levelInfo}
	if v, ok := parseLevel(c.SystemLevel); ok {
		l.sys = v
	}
	if v, ok := parseLevel(c.ApplicationLevel); ok {
		l.app = v
	}
	return l
}

// Platform record types and the level Lambda writes each at: initStart,
// start and report at INFO; the others at DEBUG (a failed init's report at
// INFO, as its Text INIT_REPORT line is written).
const (
	recInitStart       = "platform.initStart"
	recInitRuntimeDone = "platform.initRuntimeDone"
	recInitReport      = "platform.initReport"
	recStart           = "platform.start"
	recRuntimeDone     = "platform.runtimeDone"
	recReport          = "platform.report"
)

// record builds one system record line: {"time":…,"type":…,"record":{…}}.
type record struct{ b []byte }

const recordTime = "2006-01-02T15:04:05.000Z"

func newRecord(now time.Time, typ string) *record {
	r := &record{b: make([]byte, 0, 256)}
	r.b = append(r.b, `{"time":"`...)
	r.b = now.UTC().AppendFormat(r.b, recordTime)
	r.b = append(r.b, `","type":"`...)
	r.b = append(r.b, typ...)
	r.b = append(r.b, `","record":{`...)
	return r
}

func (r *record) key(k string) {
	if c := r.b[len(r.b)-1]; c != '{' {
		r.b = append(r.b, ',')
	}
	r.b = append(r.b, '"')
	r.b = append(r.b, k...)
	r.b = append(r.b, `":`...)
}

func (r *record) str(k, v string) *record {
	r.key(k)
	r.b = jsonenc.AppendString(r.b, v)
	return r
}

func (r *record) num(k string, v int64) *record {
	r.key(k)
	r.b = strconv.AppendInt(r.b, v, 10)
	return r
}

// ms writes a duration in milliseconds with Lambda's microsecond precision.
func (r *record) ms(k string, d time.Duration) *record {
	r.key(k)
	r.b = strconv.AppendFloat(r.b, float64(d.Microseconds())/1000, 'f', -1, 64)
	return r
}

func (r *record) open(k string) *record {
	r.key(k)
	r.b = append(r.b, '{')
	return r
}

func (r *record) close() *record {
	r.b = append(r.b, '}')
	return r
}

// line ends the record and the envelope.
func (r *record) line() string { return string(append(r.b, "}}"...)) }

// recordErrorType is the errorType of a platform record for an error the
// runtime reported: Lambda keeps a "Runtime.X" or "Function.X" type and
// writes any other as Runtime.Unknown (Function.Unknown for "Function.…").
func recordErrorType(t string) string {
	for _, p := range []string{"Runtime.", "Function."} {
		for rest := t; ; {
			i := strings.Index(rest, p)
			if i < 0 {
				break
			}
			rest = rest[i+len(p):]
			n := 0
			for n < len(rest) && (rest[n] >= 'a' && rest[n] <= 'z' || rest[n] >= 'A' && rest[n] <= 'Z') {
				n++
			}
			if n >= 2 && rest[0] >= 'A' && rest[0] <= 'Z' {
				return t
			}
		}
	}
	if strings.HasPrefix(t, "Function.") {
		return "Function.Unknown"
	}
	return "Runtime.Unknown"
}

// initStartRecord is platform.initStart.
func (e *Environment) initStartRecord(now time.Time) string {
	return newRecord(now, recInitStart).
		str("initializationType", e.spec.InitType).
		str("phase", "init").
		str("functionName", e.spec.FunctionName).
		str("functionVersion", e.spec.Version).
		num("instanceMaxMemory", int64(e.spec.MemoryMB)<<20).
		line()
}

// initRecords writes platform.initRuntimeDone and platform.initReport at the
// end of init; status is "success", "error" or "timeout".
func (e *Environment) initRecords(status, errorType string, d time.Duration) {
	now := e.clock.Now()
	if e.levels.sys <= levelDebug {
		r := newRecord(now, recInitRuntimeDone).
			str("initializationType", e.spec.InitType).str("phase", "init").str("status", status)
		if errorType != "" {
			r.str("errorType", errorType)
		}
		e.logs.platform(r.line(), nil, true)
	}
	level := levelDebug
	if status != "success" {
		level = levelInfo
	}
	if e.levels.sys > level {
		e.logs.drain()
		return
	}
	r := newRecord(now, recInitReport).
		str("initializationType", e.spec.InitType).str("phase", "init").str("status", status)
	if errorType != "" {
		r.str("errorType", errorType)
	}
	e.logs.platform(r.open("metrics").ms("durationMs", d).close().line(), nil, true)
}

// startRecord is platform.start.
func (e *Environment) startRecord(now time.Time, id, tenant string) string {
	r := newRecord(now, recStart).str("requestId", id)
	if tenant != "" {
		r.str("tenantId", tenant)
	}
	if e.spec.FunctionARN != "" {
		r.str("functionArn", e.spec.FunctionARN)
	}
	return r.str("version", e.spec.Version).line()
}

// finishRecords writes platform.runtimeDone and platform.report for a
// finished invocation, where the Text format writes END and REPORT. On
// Managed Instances, as AWS's emulator of them writes it, there is no
// runtimeDone and the report's metrics are the duration alone: no duration
// is billed and the memory is the environment's, shared by its invocations.
func (e *Environment) finishRecords(now time.Time, id string, w *waiter, r *Result, status, errorType string, produced int) {
	managed := e.spec.InitType == InitManagedInstances
	tenant := w.inv.TenantID
	if e.levels.sys <= levelDebug && !managed {
		rec := newRecord(now, recRuntimeDone).str("requestId", id)
		if tenant != "" {
			rec.str("tenantId", tenant)
		}
		rec.str("status", status)
		if errorType != "" {
			rec.str("errorType", errorType)
		}
		rec.open("metrics").ms("durationMs", r.Duration).num("producedBytes", int64(produced)).close()
		e.logs.platform(rec.line(), w.tail, true)
	} else {
		e.logs.drain()
	}
	if e.levels.sys > levelInfo {
		return
	}
	rec := newRecord(now, recReport).str("requestId", id)
	if tenant != "" {
		rec.str("tenantId", tenant)
	}
	rec.open("metrics").ms("durationMs", r.Duration)
	if !managed {
		rec.num("billedDurationMs", int64(r.BilledDuration/time.Millisecond)).
			num("memorySizeMB", int64(e.spec.MemoryMB)).
			num("maxMemoryUsedMB", int64(r.MaxMemoryUsedMB))
		if r.InitDuration > 0 {
			rec.ms("initDurationMs", r.InitDuration)
		}
	}
	rec.close().str("status", status)
	if errorType != "" {
		rec.str("errorType", errorType)
	}
	e.logs.platform(rec.line(), w.tail, false)
}
