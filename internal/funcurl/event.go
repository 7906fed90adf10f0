package funcurl

import (
	"encoding/base64"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shoal-dev/shoal/internal/jsonenc"
)

// The event a function URL sends its function: payload format 2.0, as Lambda
// builds it. Header names are lower-cased and repeated headers joined with
// commas; cookies leave the headers for "cookies"; query parameters are
// decoded and repeated ones joined with commas, beside the raw query string;
// a body whose content type is not text is base64-encoded. It is written
// without reflection: this is the hot path of every URL request.

// eventInput is what the event is built from.
type eventInput struct {
	r         *http.Request
	id        string // the URL id
	rawPath   string
	body      []byte
	requestID string
	accountID string // "anonymous" for AuthType NONE
	caller    *Caller
	now       time.Time
	domain    string
	port      string // the listener's, for x-forwarded-port
}

// textTypes are the media types whose bodies are sent as text, besides text/*
// and the +json and +xml suffixes.
var textTypes = map[string]bool{
	"application/json": true, "application/javascript": true, "application/xml": true,
	"application/x-www-form-urlencoded": true, "application/graphql": true, "application/x-yaml": true,
	"application/yaml": true, "application/ld+json": true,
}

// isText reports whether a body of content type ct travels as text.
func isText(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return strings.HasPrefix(mt, "text/") || textTypes[mt] ||
		strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml")
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte { return jsonenc.AppendString(b, s) }

// buildEvent writes the event into b.
func buildEvent(b []byte, in *eventInput) []byte {
	r := in.r
	b = append(b, `{"version":"2.0","routeKey":"$default","rawPath":`...)
	b = appendJSONString(b, in.rawPath)
	b = append(b, `,"rawQueryString":`...)
	b = appendJSONString(b, r.URL.RawQuery)

	// Cookies.
	if cs := r.Header["Cookie"]; len(cs) > 0 {
		b = append(b, `,"cookies":[`...)
		n := 0
		for _, line := range cs {
			for part := range strings.SplitSeq(line, ";") {
				part = strings.TrimSpace(part)
				if part == "" {
					continue
				}
				if n > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, part)
				n++
			}
		}
		b = append(b, ']')
	}

	// Headers, sorted for a stable event.
	b = append(b, `,"headers":{`...)
	names := make([]string, 0, len(r.Header)+5)
	for k := range r.Header {
		if k != "Cookie" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	first := true
	header := func(name, value string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = appendJSONString(b, value)
	}
	var forwardedFor, traceID string
	for _, k := range names {
		lk := strings.ToLower(k)
		v := strings.Join(r.Header[k], ",")
		switch lk {
		case "x-forwarded-for":
			forwardedFor = v
			continue
		case "x-forwarded-proto", "x-forwarded-port":
			continue // the front door's own
		case "x-amzn-trace-id":
			traceID = v
		}
		header(lk, v)
	}
	sourceIP := remoteIP(r)
	if forwardedFor != "" {
		forwardedFor += ", " + sourceIP
	} else {
		forwardedFor = sourceIP
	}
	header("host", r.Host)
	if traceID == "" {
		traceID = newTraceID(in.now)
		header("x-amzn-trace-id", traceID)
	}
	header("x-forwarded-for", forwardedFor)
	header("x-forwarded-port", in.port)
	header("x-forwarded-proto", "http")
	b = append(b, '}')

	// Query parameters.
	if r.URL.RawQuery != "" {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if len(q) > 0 {
			keys := make([]string, 0, len(q))
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b = append(b, `,"queryStringParameters":{`...)
			for i, k := range keys {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, k)
				b = append(b, ':')
				b = appendJSONString(b, strings.Join(q[k], ","))
			}
			b = append(b, '}')
		}
	}

	// The request context.
	b = append(b, `,"requestContext":{"accountId":`...)
	b = appendJSONString(b, in.accountID)
	b = append(b, `,"apiId":`...)
	b = appendJSONString(b, in.id)
	b = append(b, `,"authentication":null`...)
	if c := in.caller; c != nil {
		b = append(b, `,"authorizer":{"iam":{"accessKey":`...)
		b = appendJSONString(b, c.AccessKeyID)
		b = append(b, `,"accountId":`...)
		b = appendJSONString(b, c.AccountID)
		b = append(b, `,"callerId":`...)
		b = appendJSONString(b, c.UserID)
		b = append(b, `,"cognitoIdentity":null,"principalOrgId":null,"userArn":`...)
		b = appendJSONString(b, c.UserARN)
		b = append(b, `,"userId":`...)
		b = appendJSONString(b, c.UserID)
		b = append(b, `}}`...)
	}
	b = append(b, `,"domainName":`...)
	b = appendJSONString(b, in.domain)
	b = append(b, `,"domainPrefix":`...)
	b = appendJSONString(b, in.id)
	b = append(b, `,"http":{"method":`...)
	b = appendJSONString(b, r.Method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, in.rawPath)
	b = append(b, `,"protocol":`...)
	b = appendJSONString(b, r.Proto)
	b = append(b, `,"sourceIp":`...)
	b = appendJSONString(b, sourceIP)
	b = append(b, `,"userAgent":`...)
	b = appendJSONString(b, r.UserAgent())
	b = append(b, `},"requestId":`...)
	b = appendJSONString(b, in.requestID)
	b = append(b, `,"routeKey":"$default","stage":"$default","time":`...)
	b = appendJSONString(b, in.now.UTC().Format("02/Jan/2006:15:04:05 -0700"))
	b = append(b, `,"timeEpoch":`...)
	b = strconv.AppendInt(b, in.now.UnixMilli(), 10)
	b = append(b, '}')

	// The body.
	if len(in.body) > 0 {
		b = append(b, `,"body":`...)
		if isText(r.Header.Get("Content-Type")) && utf8.Valid(in.body) {
			b = appendJSONString(b, string(in.body))
			b = append(b, `,"isBase64Encoded":false}`...)
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, in.body)
			b = append(b, `","isBase64Encoded":true}`...)
		}
		return b
	}
	return append(b, `,"isBase64Encoded":false}`...)
}

// remoteIP is the client's address without its port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newTraceID returns an X-Ray trace header: Root=1-<epoch hex>-<24 hex>.
func newTraceID(now time.Time) string {
	var rnd [12]byte
	for i := 0; i < len(rnd); i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8 && i+j < len(rnd); j++ {
			rnd[i+j] = byte(v >> (8 * j))
		}
	}
	return "Root=1-" + strconv.FormatInt(now.Unix(), 16) + "-" + hex.EncodeToString(rnd[:])
}
