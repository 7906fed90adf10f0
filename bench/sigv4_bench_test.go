package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// sigv4Requests are requests as the AWS SDK for Go v2 sends them: an invoke
// of the echo function, a list with a query, and a CreateFunction with a 1 MB
// body (where hashing the body is most of the cost).
var sigv4Requests = []struct {
	name, method, url string
	header            http.Header
	body              []byte
}{
	{name: "invoke-17B", method: "POST", url: "http://127.0.0.1:9000/2015-03-31/functions/echo/invocations",
		header: http.Header{"Content-Type": {"application/octet-stream"}, "Amz-Sdk-Invocation-Id": {"8e3b8a1c-5d1e-4f0a-9d47-1c2b3a4d5e6f"},
			"Amz-Sdk-Request": {"attempt=1; max=3"}}, body: echoBody},
	{name: "list-with-query", method: "GET", url: "http://127.0.0.1:9000/2015-03-31/functions?Marker=a%2Bb&MaxItems=50",
		header: http.Header{"Amz-Sdk-Invocation-Id": {"8e3b8a1c-5d1e-4f0a-9d47-1c2b3a4d5e6f"}, "Amz-Sdk-Request": {"attempt=1; max=3"}}},
	{name: "create-function-1MB", method: "POST", url: "http://127.0.0.1:9000/2015-03-31/functions",
		header: http.Header{"Content-Type": {"application/json"}}, body: bytes.Repeat([]byte("a"), 1<<20)},
}

var benchTime = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// arrived signs a request with the SDK's signer and reads it back from the
// wire as shoal's HTTP server does.
func arrived(b *testing.B, method, u string, header http.Header, body []byte, creds aws.Credentials) *http.Request {
	b.Helper()
	r, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	if len(body) == 0 {
		r.Body, r.ContentLength = nil, 0
	}
	for k, v := range header {
		r.Header[k] = v
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "lambda", "us-east-1", benchTime); err != nil {
		b.Fatal(err)
	}
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		b.Fatal(err)
	}
	got, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		b.Fatal(err)
	}
	return got
}

// BenchmarkSigV4Verify measures what verifying a request's signature costs
// shoal (ns/op, allocs/op): internal/sigv4's Verify, beside verifying it by
// signing a copy of the request with the AWS SDK's own signer and comparing,
// the library approach it replaces (docs/decisions/sigv4-verification.md).
func BenchmarkSigV4Verify(b *testing.B) {
	creds := aws.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	keys, err := sigv4.StaticKeys(&sigv4.Key{Profile: "default", AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey})
	if err != nil {
		b.Fatal(err)
	}
	v, err := sigv4.New(sigv4.Config{Region: "us-east-1"}, keys, clock.NewFake(benchTime), nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, req := range sigv4Requests {
		r := arrived(b, req.method, req.url, req.header, req.body, creds)
		reset := func() {
			if req.body != nil {
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(req.body)), int64(len(req.body))
			}
		}
		b.Run("shoal/"+req.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(req.body)))
			cpu0 := selfCPU()
			for b.Loop() {
				reset()
				if _, err := v.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(selfCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
		b.Run("sdk-signer/"+req.name, func(b *testing.B) {
			signer := v4.NewSigner()
			b.ReportAllocs()
			b.SetBytes(int64(len(req.body)))
			cpu0 := selfCPU()
			for b.Loop() {
				reset()
				if err := verifyWithSDKSigner(signer, r, creds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(selfCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// selfCPU is the user and system CPU time this process has used, garbage
// collection included: on a machine others share, CPU per operation says
// more than wall time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// verifyWithSDKSigner verifies r by signing a copy of it that carries only
// the headers r's signature names with the SDK's signer, and comparing the
// two signatures. It works only where the SDK's signer would sign exactly those
// headers (not User-Agent, for one, and Content-Length only for a body).
func verifyWithSDKSigner(signer *v4.Signer, r *http.Request, creds aws.Credentials) error {
	a, err := sigv4.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return err
	}
	var body []byte
	if r.Body != nil {
		if body, err = io.ReadAll(r.Body); err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	path, _, _ := strings.Cut(r.RequestURI, "?")
	c := &http.Request{Method: r.Method, Host: r.Host, Header: http.Header{},
		URL: &url.URL{Scheme: "http", Host: r.Host, Opaque: "//" + r.Host + path, RawQuery: r.URL.RawQuery}}
	for h := range strings.SplitSeq(a.SignedHeaders, ";") {
		switch h {
		case "host":
		case "content-length":
			c.ContentLength = r.ContentLength
		default:
			c.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	if err := signer.SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), a.Credential.Service,
		a.Credential.Region, at); err != nil {
		return err
	}
	got, err := sigv4.ParseAuthorization(c.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	if got.SignedHeaders != a.SignedHeaders || subtle.ConstantTimeCompare([]byte(got.Signature), []byte(a.Signature)) != 1 {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}

// BenchmarkSigV4WarmInvoke compares a warm invoke of the echo function at 1
// client with SigV4 verification on (the default) and off (--auth none), in
// rounds ordered ABBA ABBA, so that a drift of the machine's speed weighs on
// both alike. front-cpu-µs/op is what shoal's process spends per invocation,
// verification included. The client signs each distinct request once (see
// signerFor).
func BenchmarkSigV4WarmInvoke(b *testing.B) {
	rounds := map[string]int{}
	for _, auth := range []string{"sigv4", "none", "none", "sigv4", "sigv4", "none", "none", "sigv4"} {
		rounds[auth]++
		b.Run(fmt.Sprintf("auth=%s/c=1/round=%d", auth, rounds[auth]), func(b *testing.B) {
			endpoint, front, client := shoalUp(b, "--auth", auth)
			deployEcho(b, client, 1769)
			url := endpoint + "/2015-03-31/functions/echo/invocations"
			warmUp(b, url, 1)
			load(b, url, 1, echoBody, watched{name: "front", pids: []int{front}},
				watched{name: "function", pids: descendants(front)})
		})
	}
}
