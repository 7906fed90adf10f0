package meter

import (
	"strconv"
	"time"

	"github.com/shoal-dev/shoal/internal/jsonenc"
)

// AppendJSON appends ev as JSON, the shape encoding/json gives it (fields
// with omitempty left out when empty), without reflection: it runs on the
// invoke path.
func AppendJSON(b []byte, ev *Event) []byte {
	b = append(b, `{"id":`...)
	b = jsonenc.AppendString(b, ev.ID)
	b = append(b, `,"kind":`...)
	b = jsonenc.AppendString(b, string(ev.Kind))
	b = append(b, `,"start":`...)
	b = appendTime(b, ev.Start)
	b = append(b, `,"end":`...)
	b = appendTime(b, ev.End)
	b = strField(b, "function", ev.Function)
	b = strField(b, "version", ev.Version)
	b = strField(b, "compute", ev.Compute)
	b = strField(b, "architecture", ev.Architecture)
	b = intField(b, "memory_mb", int64(ev.MemoryMB))
	b = strField(b, "capacity_provider", ev.CapacityProvider)
	b = strField(b, "instance", ev.Instance)
	b = strField(b, "instance_type", ev.InstanceType)
	b = strField(b, "zone", ev.Zone)
	b = strField(b, "request_id", ev.RequestID)
	b = floatField(b, "duration_ms", ev.DurationMs)
	b = intField(b, "billed_ms", ev.BilledMs)
	b = floatField(b, "init_ms", ev.InitMs)
	b = floatField(b, "cpu_ms", ev.CPUMs)
	b = intField(b, "max_memory_used_mb", int64(ev.MaxMemoryUsedMB))
	b = strField(b, "outcome", ev.Outcome)
	b = strField(b, "error_type", ev.ErrorType)
	b = strField(b, "state", ev.State)
	b = strField(b, "qualifier", ev.Qualifier)
	b = intField(b, "concurrency", int64(ev.Concurrency))
	if ev.Final {
		b = append(key(b, "final"), "true"...)
	}
	return append(b, '}')
}

func key(b []byte, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func strField(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	return jsonenc.AppendString(key(b, name), v)
}

func intField(b []byte, name string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(key(b, name), v, 10)
}

func floatField(b []byte, name string, v float64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendFloat(key(b, name), v, 'f', -1, 64)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
