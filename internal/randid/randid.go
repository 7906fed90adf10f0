// Package randid makes the random identifiers shoal hands out: request ids
// and revision ids (UUIDs), the ids of instances, environments and journals
// (hex digits), and the names of log streams.
//
// They need to be unique, not secret: they come from the runtime's
// per-thread generator (math/rand/v2, seeded from the system's randomness),
// which costs no system call on the invoke path. Nothing here is fit for
// keys or tokens.
package randid

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// Hex returns n random bytes as 2n lower-case hex digits.
func Hex(n int) string {
	b := make([]byte, (n+7)&^7)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rand.Uint64())
	}
	return hex.EncodeToString(b[:n])
}

// UUID returns a random UUID (version 4, variant 10) in its 36-character
// form, as Lambda's request ids and RevisionIds are.
func UUID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// LogStream names an execution environment's log stream as Lambda does:
// the UTC date, the version in brackets and 32 hex digits, for example
// "2026/11/26/[$LATEST]4f0c…". An empty version is $LATEST.
func LogStream(now time.Time, version string) string {
	if version == "" {
		version = "$LATEST"
	}
	return now.UTC().Format("2006/01/02") + "/[" + version + "]" + Hex(16)
}
