package controlplane

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/shoal-dev/shoal/internal/clock"
	"github.com/shoal-dev/shoal/internal/funcurl"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// maxRefusedDrain bounds how much of a refused request's body is read and
// discarded, so that a client still sending it (an invoke payload goes up to
// 6 MB) reads the refusal instead of a reset connection.
const maxRefusedDrain = 8 << 20

// authenticate returns h behind SigV4 verification with the keys of the
// credentials file, which Start has written with a fresh key when it was
// missing (s.credsCreated).
func (s *Server) authenticate(h http.Handler, clk clock.Clock, step func(string, ...any)) (http.Handler, error) {
	path, created := s.cfg.CredentialsFile, s.credsCreated
	keys, err := sigv4.OpenKeys(path, clk)
	if err != nil {
		return nil, err
	}
	s.creds = path
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		s.logger.Warn("the credentials file can be read by other users", "path", path, "mode", info.Mode().Perm())
	}
	logger := s.logger.With("component", "auth")
	v, err := sigv4.New(sigv4.Config{Region: s.cfg.Region}, keys, clk, logger)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%d key(s)", len(keys.All()))
	if created {
		what = "written with a fresh key"
	}
	step("API requests need a SigV4 signature; keys in %s (%s)", path, what)
	s.verifier = v
	return authHandler(v, h, logger), nil
}

// codeURLLifetime is how long GetFunction's Code.Location works, as on AWS.
const codeURLLifetime = 10 * time.Minute

// presignCode presigns a Code.Location URL with the key the GetFunction
// request was signed with, so that it can be fetched without credentials (curl,
// a browser) for codeURLLifetime, as AWS's presigned S3 URL can.
func presignCode(region string, clk clock.Clock, logger *slog.Logger) func(r *http.Request, u string) string {
	return func(r *http.Request, u string) string {
		key := sigv4.KeyFrom(r.Context())
		if key == nil {
			return u
		}
		signed, err := sigv4.Presign(r.Context(), u, key, region, clk.Now(), codeURLLifetime)
		if err != nil {
			logger.Warn("presigning a code location", "url", u, "err", err)
			return u
		}
		return signed
	}
}

// urlAuth checks the signatures of requests to AWS_IAM function URLs with the
// API's keys: a URL is invoked by whoever may call the API, as on AWS an IAM
// principal of the account with lambda:InvokeFunctionUrl. With --auth none
// there is no verifier and every request that carries a SigV4 Authorization
// header is let through, as every API request is.
type urlAuth struct {
	v         *sigv4.Verifier // nil with --auth none
	accountID string
}

func (a urlAuth) Authenticate(r *http.Request) (*funcurl.Caller, error) {
	if a.v == nil {
		auth, err := sigv4.ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			return nil, err
		}
		return a.caller(auth.Credential.AccessKeyID, "anonymous"), nil
	}
	key, err := a.v.Verify(r)
	if err != nil {
		return nil, err
	}
	return a.caller(key.AccessKeyID, key.Profile), nil
}

// caller names the signer as an IAM user of the account, the profile of the
// credentials file its key came from being the user name.
func (a urlAuth) caller(accessKeyID, profile string) *funcurl.Caller {
	return &funcurl.Caller{
		AccessKeyID: accessKeyID,
		AccountID:   a.accountID,
		UserARN:     "arn:aws:iam::" + a.accountID + ":user/" + profile,
		UserID:      accessKeyID,
	}
}

// authHandler serves h the requests whose signature v accepts, and answers the
// others with Lambda's error.
func authHandler(v *sigv4.Verifier, h http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := v.Verify(r)
		if err != nil {
			logger.Debug("request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			_, _ = io.CopyN(io.Discard, r.Body, maxRefusedDrain)
			lambdaapi.WriteError(w, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(sigv4.WithKey(r.Context(), key)))
	})
}
