package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Transport is an http.RoundTripper that signs every request with SigV4 the way
// the AWS SDKs do (with their signer), for the clients of shoal's own endpoints
// (/shoal/v1/...), which the Lambda SDK does not know.
type Transport struct {
	// Base sends the signed requests; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Credentials sign the requests; nil or aws.AnonymousCredentials sends them
	// unsigned.
	Credentials aws.CredentialsProvider
	// Region and Service make the signature's scope (Service defaults to lambda).
	Region, Service string
	// Now is the signing time; nil means time.Now.
	Now func() time.Time
}

var _ http.RoundTripper = (*Transport)(nil)

var signer = v4.NewSigner()

// RoundTrip signs a copy of req and sends it.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if t.Credentials == nil || aws.IsCredentialsProvider(t.Credentials, (*aws.AnonymousCredentials)(nil)) {
		return base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if err := Sign(req.Context(), r, t.Credentials, t.Region, t.Service, t.now()); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return base.RoundTrip(r)
}

func (t *Transport) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Sign signs r in place with the credentials at time at, for service (default
// lambda) in region, hashing its body (which it reads and puts back).
func Sign(ctx context.Context, r *http.Request, creds aws.CredentialsProvider, region, service string, at time.Time) error {
	if service == "" {
		service = DefaultService
	}
	c, err := creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("sigv4: credentials: %w", err)
	}
	payloadHash := emptySHA256
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return fmt.Errorf("sigv4: reading the body to sign: %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		r.ContentLength = int64(len(b))
		sum := sha256.Sum256(b)
		payloadHash = hex.EncodeToString(sum[:])
	}
	if err := signer.SignHTTP(ctx, c, r, payloadHash, service, region, at); err != nil {
		return fmt.Errorf("sigv4: %w", err)
	}
	return nil
}

// Presign returns rawURL presigned for a GET with key, valid from at for
// expires, as AWS presigns the URLs it hands out (GetFunction's Code.Location):
// whoever holds the URL may fetch it until then, without credentials.
func Presign(ctx context.Context, rawURL string, key *Key, region string, at time.Time, expires time.Duration) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("sigv4: %w", err)
	}
	q := u.Query()
	q.Set(qExpires, strconv.Itoa(int(expires/time.Second)))
	u.RawQuery = q.Encode()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("sigv4: %w", err)
	}
	signed, _, err := signer.PresignHTTP(ctx, aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey},
		r, emptySHA256, DefaultService, region, at)
	if err != nil {
		return "", fmt.Errorf("sigv4: %w", err)
	}
	return signed, nil
}

type keyContext struct{}

// WithKey returns ctx carrying the key a request was signed with.
func WithKey(ctx context.Context, k *Key) context.Context {
	return context.WithValue(ctx, keyContext{}, k)
}

// KeyFrom returns the key WithKey put in ctx, or nil.
func KeyFrom(ctx context.Context) *Key {
	k, _ := ctx.Value(keyContext{}).(*Key)
	return k
}
