// Package sigv4 verifies AWS Signature Version 4 on the requests shoal serves, as
// Lambda's front end does, against the access keys of an AWS shared-credentials
// file (keys.go); and signs shoal's own client requests (transport.go).
//
// Verification rebuilds the canonical request from what arrived: the method, the
// path as sent and URI-encoded once more (Lambda, like every service but S3,
// signs the encoded path), the query re-encoded and sorted, exactly the headers
// the signature names, and the SHA-256 of the body. It then derives the signing
// key from the secret of the named access key and the signature's scope, and
// compares the signature in constant time. Failures are the errors Lambda
// answers (awserr): MissingAuthenticationTokenException,
// IncompleteSignatureException, UnrecognizedClientException and
// InvalidSignatureException, all 403.
//
// It must not decide what a caller may do: a valid signature admits the request,
// nothing more (shoal has one account and no IAM policies).
package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/clock"
)

// Defaults of Config.
const (
	DefaultService = "lambda"
	// DefaultMaxSkew is how far a request's time may be from shoal's, either way.
	DefaultMaxSkew = 5 * time.Minute
	// DefaultMaxBodyBytes is the largest body read to hash: Lambda's largest
	// request (CreateFunction with a zip inline).
	DefaultMaxBodyBytes = 70167211
	// maxPresignedExpires is the longest X-Amz-Expires AWS accepts (7 days).
	maxPresignedExpires = 7 * 24 * 3600
)

// Config configures a Verifier.
type Config struct {
	// Region is the region signatures must be scoped to (e.g. us-east-1).
	Region string
	// Service is the service they must be scoped to (default "lambda").
	Service string
	// MaxSkew is how far a signature's time may be from now (default 5 minutes).
	MaxSkew time.Duration
	// MaxBodyBytes bounds the body read to check its hash (default
	// DefaultMaxBodyBytes); a larger one is refused with a 413.
	MaxBodyBytes int64
}

// Validate fills defaults and checks the values.
func (c *Config) Validate() error {
	if c.Service == "" {
		c.Service = DefaultService
	}
	if c.MaxSkew == 0 {
		c.MaxSkew = DefaultMaxSkew
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Region == "" {
		return errors.New("sigv4: no region")
	}
	if c.MaxSkew < 0 || c.MaxBodyBytes < 0 {
		return errors.New("sigv4: negative limit")
	}
	return nil
}

// Verifier checks the signatures of requests. It is safe for concurrent use.
type Verifier struct {
	cfg   Config // immutable
	keys  *Keys  // the accepted access keys
	clock clock.Clock
	log   *slog.Logger
	// scratch holds per-request buffers and the HMAC of the last signing key
	// used, so that a verification allocates nothing in the steady state.
	scratch sync.Pool // of *scratch
}

// New returns a Verifier of signatures made with keys.
func New(cfg Config, keys *Keys, clk clock.Clock, logger *slog.Logger) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("sigv4: no keys")
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{cfg: cfg, keys: keys, clock: clk, log: logger}, nil
}

// scratch is one verification's working memory.
type scratch struct {
	canon []byte // the canonical request
	sts   []byte // the string to sign
	sig   []byte // the signature as sent
	want  [2 * sha256.Size]byte
	sum   []byte
	// mac is an HMAC-SHA256 keyed with macKey's signing key.
	mac    hash.Hash
	macKey *derivedKey
	pairs  []queryPair
}

type queryPair struct{ k, v string }

// amzDateFormat is the ISO 8601 basic format of X-Amz-Date.
const amzDateFormat = "20060102T150405Z"

// emptySHA256 is the hex SHA-256 of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Verify checks r's signature and returns the key that made it. It reads r's body
// to hash it and puts an equivalent one back, so handlers read it as sent.
// Errors are *awserr.Error with Lambda's codes and messages.
func (v *Verifier) Verify(r *http.Request) (*Key, error) {
	header := ""
	if h := r.Header["Authorization"]; len(h) > 0 {
		header = h[0]
	}
	var (
		a   Authorization
		err error
	)
	presigned := strings.Contains(r.URL.RawQuery, qAlgorithm)
	switch {
	case header != "" && presigned:
		return nil, awserr.IncompleteSignature("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter " +
			"or the Authorization header should be specified")
	case header != "":
		a, err = ParseAuthorization(header)
	case presigned:
		a, err = parsePresigned(r.URL.Query())
	default:
		return nil, awserr.MissingAuthenticationToken()
	}
	if err != nil {
		return nil, err
	}
	amzDate, signedAt, err := requestTime(r, &a)
	if err != nil {
		return nil, err
	}
	if err := a.checkParams(header, amzDate != ""); err != nil {
		return nil, err
	}
	if err := v.checkScope(&a.Credential, amzDate); err != nil {
		return nil, err
	}
	if err := v.checkTime(&a, signedAt); err != nil {
		return nil, err
	}
	if _, ok := r.Header["X-Amz-Security-Token"]; ok || (presigned && r.URL.Query().Has(qSecurityToken)) {
		// shoal's keys are long-term keys: no session token goes with them.
		return nil, awserr.UnrecognizedClient()
	}
	key := v.keys.Lookup(a.Credential.AccessKeyID)
	if key == nil {
		return nil, awserr.UnrecognizedClient()
	}
	payloadHash, err := v.hashBody(r)
	if err != nil {
		return nil, err
	}

	s, _ := v.scratch.Get().(*scratch)
	if s == nil {
		s = &scratch{sum: make([]byte, 0, sha256.Size)}
	}
	defer v.scratch.Put(s)
	s.canon, err = appendCanonicalRequest(s.canon[:0], r, &a, &payloadHash, s)
	if err != nil {
		return nil, err
	}
	canonHash := sha256.Sum256(s.canon)
	s.sts = append(s.sts[:0], Algorithm...)
	s.sts = append(s.sts, '\n')
	s.sts = append(s.sts, amzDate...)
	s.sts = append(s.sts, '\n')
	s.sts = appendScope(s.sts, &a.Credential)
	s.sts = append(s.sts, '\n')
	s.sts = hex.AppendEncode(s.sts, canonHash[:])

	dk := key.signingKey(&a.Credential)
	if s.macKey != dk {
		s.mac, s.macKey = hmac.New(sha256.New, dk.key), dk
	}
	s.mac.Reset()
	s.mac.Write(s.sts)
	s.sum = s.mac.Sum(s.sum[:0])
	hex.Encode(s.want[:], s.sum)
	s.sig = append(s.sig[:0], a.Signature...)
	if subtle.ConstantTimeCompare(s.sig, s.want[:]) != 1 {
		v.log.Debug("signature mismatch", "access_key_id", key.AccessKeyID, "method", r.Method, "path", r.URL.Path,
			"canonical_request", string(s.canon), "string_to_sign", string(s.sts))
		return nil, awserr.InvalidSignature(awserr.SignatureMismatch)
	}
	return key, nil
}

// requestTime is the request's signing time: X-Amz-Date (the header, or the
// query parameter of a presigned URL), else the Date header. amzDate is it in
// the ISO 8601 basic format the string to sign uses; "" when the request has none.
func requestTime(r *http.Request, a *Authorization) (amzDate string, t time.Time, err error) {
	switch {
	case a.Presigned:
		amzDate = a.Date
	case len(r.Header["X-Amz-Date"]) > 0:
		amzDate = r.Header["X-Amz-Date"][0]
	case len(r.Header["Date"]) > 0:
		d, err := http.ParseTime(r.Header["Date"][0])
		if err != nil {
			return "", time.Time{}, awserr.IncompleteSignature("Date must be in ISO-8601 'basic format'. Got '%s'. "+
				"See http://en.wikipedia.org/wiki/ISO_8601", r.Header["Date"][0])
		}
		return d.UTC().Format(amzDateFormat), d, nil
	default:
		return "", time.Time{}, nil
	}
	t, err = time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return "", time.Time{}, awserr.IncompleteSignature("Date must be in ISO-8601 'basic format'. Got '%s'. "+
			"See http://en.wikipedia.org/wiki/ISO_8601", amzDate)
	}
	return amzDate, t, nil
}

// checkScope refuses a credential scoped to another service, region or day than
// the request, as Lambda does.
func (v *Verifier) checkScope(c *Credential, amzDate string) error {
	switch {
	case c.Terminator != "aws4_request":
		return awserr.InvalidSignature("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'. ", c.Terminator)
	case c.Service != v.cfg.Service:
		return awserr.InvalidSignature("Credential should be scoped to correct service: '%s'. ", v.cfg.Service)
	case c.Region != v.cfg.Region:
		return awserr.InvalidSignature("Credential should be scoped to a valid region, not '%s'. ", c.Region)
	case c.Date != amzDate[:8]:
		return awserr.InvalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "+
			"'%s' != '%s', from '%s'.", c.Date, amzDate[:8], amzDate)
	}
	return nil
}

// checkTime refuses a signature made more than MaxSkew before or after now (for
// a presigned URL with X-Amz-Expires: after its expiry), in AWS's words.
func (v *Verifier) checkTime(a *Authorization, signedAt time.Time) error {
	now := v.clock.Now().UTC()
	skew := v.cfg.MaxSkew
	mins := func() string { return strconv.FormatFloat(skew.Minutes(), 'f', -1, 64) }
	if a.Presigned && a.Expires != "" {
		secs, err := strconv.Atoi(a.Expires)
		if err != nil || secs < 0 || secs > maxPresignedExpires {
			return awserr.IncompleteSignature("X-Amz-Expires must be a number of seconds between 0 and %d, got '%s'",
				maxPresignedExpires, a.Expires)
		}
		if now.After(signedAt.Add(time.Duration(secs) * time.Second)) {
			return awserr.InvalidSignature("Signature expired: %s is now earlier than %s (%s - %d sec.)",
				signedAt.Add(time.Duration(secs)*time.Second).Format(amzDateFormat), now.Format(amzDateFormat),
				now.Format(amzDateFormat), secs)
		}
	} else if earliest := now.Add(-skew); signedAt.Before(earliest) {
		return awserr.InvalidSignature("Signature expired: %s is now earlier than %s (%s - %s min.)",
			signedAt.Format(amzDateFormat), earliest.Format(amzDateFormat), now.Format(amzDateFormat), mins())
	}
	if latest := now.Add(skew); signedAt.After(latest) {
		return awserr.InvalidSignature("Signature not yet current: %s is still later than %s (%s + %s min.)",
			signedAt.Format(amzDateFormat), latest.Format(amzDateFormat), now.Format(amzDateFormat), mins())
	}
	return nil
}

// hashBody reads r's body, replaces it with the bytes read and returns their
// SHA-256.
func (v *Verifier) hashBody(r *http.Request) ([sha256.Size]byte, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return emptyBodySum, nil
	}
	limit := v.cfg.MaxBodyBytes
	tooLarge := func() error {
		return &awserr.Error{Code: "RequestEntityTooLargeException", Status: http.StatusRequestEntityTooLarge, Type: "User",
			Message: fmt.Sprintf("Request must be smaller than %d bytes for the operation", limit)}
	}
	if r.ContentLength > limit {
		return [sha256.Size]byte{}, tooLarge()
	}
	var (
		b   []byte
		err error
	)
	if r.ContentLength > 0 {
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	}
	if err != nil {
		return [sha256.Size]byte{}, awserr.InvalidRequestContent("Could not read request body: %v", err)
	}
	if int64(len(b)) > limit {
		return [sha256.Size]byte{}, tooLarge()
	}
	r.Body = body{bytes.NewReader(b)}
	r.ContentLength = int64(len(b))
	return sha256.Sum256(b), nil
}

// emptyBodySum is the SHA-256 of no bytes.
var emptyBodySum = sha256.Sum256(nil)

// body is a request body read into memory.
type body struct{ *bytes.Reader }

func (body) Close() error { return nil }

// appendCanonicalRequest appends r's canonical request:
//
//	METHOD \n URI \n QUERY \n name:value \n … \n SIGNED-HEADERS \n PAYLOAD-HASH
func appendCanonicalRequest(b []byte, r *http.Request, a *Authorization, payloadHash *[sha256.Size]byte, s *scratch) ([]byte, error) {
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = appendURI(b, requestPath(r))
	b = append(b, '\n')
	b = appendQuery(b, r.URL.RawQuery, a.Presigned, s)
	b = append(b, '\n')
	for name := range strings.SplitSeq(a.SignedHeaders, ";") {
		b = append(b, name...)
		b = append(b, ':')
		var ok bool
		b, ok = appendHeaderValue(b, r, name)
		if !ok {
			return nil, awserr.IncompleteSignature("'%s' is named as a SignedHeader, but it does not exist in the HTTP request.", name)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, a.SignedHeaders...)
	b = append(b, '\n')
	return hex.AppendEncode(b, payloadHash[:]), nil
}

// requestPath is the path of r as the client sent it, still percent-encoded.
func requestPath(r *http.Request) string {
	p := r.RequestURI
	if p == "" {
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if rest, ok := strings.CutPrefix(p, "http://"); ok { // absolute form
		p = rest[strings.IndexByte(rest+"/", '/'):]
	} else if rest, ok := strings.CutPrefix(p, "https://"); ok {
		p = rest[strings.IndexByte(rest+"/", '/'):]
	}
	return p
}

// appendURI appends path URI-encoded as SigV4 asks (every byte but the
// unreserved ones and '/' as %XX). path is already encoded, so Lambda's
// canonical URI encodes it twice, as the AWS SDKs sign it.
func appendURI(b []byte, path string) []byte {
	if path == "" {
		return append(b, '/')
	}
	return appendEscaped(b, path, false)
}

const upperhex = "0123456789ABCDEF"

// appendEscaped appends s with every byte outside A-Z a-z 0-9 - . _ ~ (and '/'
// unless encodeSlash) written as %XX.
func appendEscaped(b []byte, s string, encodeSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (c == '/' && !encodeSlash) {
			b = append(b, c)
		} else {
			b = append(b, '%', upperhex[c>>4], upperhex[c&15])
		}
	}
	return b
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// appendQuery appends the canonical query: every name=value pair decoded,
// encoded again the SigV4 way and sorted by name, then value; a presigned
// request's X-Amz-Signature left out.
func appendQuery(b []byte, raw string, presigned bool, s *scratch) []byte {
	if raw == "" {
		return b
	}
	pairs := s.pairs[:0]
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = unescapeQuery(k), unescapeQuery(v)
		if presigned && k == qSignature {
			continue
		}
		pairs = append(pairs, queryPair{
			k: string(appendEscaped(nil, k, true)),
			v: string(appendEscaped(nil, v, true)),
		})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	clear(pairs)
	s.pairs = pairs[:0]
	return b
}

// unescapeQuery decodes a query component as url.ParseQuery does ('+' is a
// space), which is how the AWS SDKs read the query they sign; a malformed one is
// kept as sent.
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// appendHeaderValue appends the canonical value of the signed header name: its
// values in order, each with leading and trailing spaces trimmed and runs of
// spaces made one, joined by commas. ok is false when r lacks the header.
func appendHeaderValue(b []byte, r *http.Request, name string) (_ []byte, ok bool) {
	switch name {
	case "host":
		return appendTrimmed(b, r.Host), r.Host != ""
	case "content-length":
		if _, ok := r.Header["Content-Length"]; !ok && r.ContentLength >= 0 && r.Body != nil {
			// net/http drops the header in some cases (HTTP/2); its length stays.
			return strconv.AppendInt(b, r.ContentLength, 10), true
		}
	}
	values := r.Header[headerKey(name)]
	if len(values) == 0 {
		values = r.Header[name] // a header set outside Go's canonical form
	}
	if len(values) == 0 {
		return b, false
	}
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTrimmed(b, v)
	}
	return b, true
}

// canonicalKeys are the Go header keys of the names clients usually sign, so
// that looking those up allocates nothing.
var canonicalKeys = map[string]string{}

func init() {
	for _, k := range []string{"Accept", "Accept-Encoding", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "Content-Encoding",
		"Content-Length", "Content-Md5", "Content-Type", "User-Agent", "X-Amz-Client-Context", "X-Amz-Content-Sha256",
		"X-Amz-Date", "X-Amz-Invocation-Type", "X-Amz-Log-Type", "X-Amz-Security-Token", "X-Amz-Target",
		"X-Amz-User-Agent", "X-Amzn-Trace-Id"} {
		canonicalKeys[strings.ToLower(k)] = k
	}
}

func headerKey(name string) string {
	if k, ok := canonicalKeys[name]; ok {
		return k
	}
	return http.CanonicalHeaderKey(name)
}

// appendTrimmed appends v without leading or trailing spaces and with each run
// of spaces inside made one.
func appendTrimmed(b []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b = append(b, c)
	}
	return b
}

// appendScope appends date/region/service/terminator.
func appendScope(b []byte, c *Credential) []byte {
	b = append(b, c.Date...)
	b = append(b, '/')
	b = append(b, c.Region...)
	b = append(b, '/')
	b = append(b, c.Service...)
	b = append(b, '/')
	return append(b, c.Terminator...)
}
