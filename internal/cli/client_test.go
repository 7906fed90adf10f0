package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/sigv4"
)

// signedServer checks every request's signature against keys and remembers
// which profile signed it ("unsigned" for none, "refused" for a bad one). It
// answers as an empty shoal would.
type signedServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls []string
}

func newSignedServer(t *testing.T, keys ...*sigv4.Key) *signedServer {
	t.Helper()
	ks, err := sigv4.StaticKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sigv4.New(sigv4.Config{Region: "us-east-1"}, ks, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &signedServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, err := v.Verify(r)
		s.mu.Lock()
		switch {
		case err == nil:
			s.calls = append(s.calls, key.Profile)
		case r.Header.Get("Authorization") == "":
			s.calls = append(s.calls, "unsigned")
		default:
			s.calls = append(s.calls, "refused")
		}
		s.mu.Unlock()
		if err != nil && r.Header.Get("Authorization") != "" {
			lambdaapi.WriteError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/shoal/v1/fleet":
			_, _ = w.Write([]byte(`{"instances":[],"versions":[]}`))
		case "/shoal/v1/cluster":
			_, _ = w.Write([]byte(`{"jetstream":{},"streams":[]}`))
		default:
			_, _ = w.Write([]byte(`{"Functions":[],"CapacityProviders":[]}`))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *signedServer) signers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

const (
	keyA = "AKIAAAAAAAAAAAAAAAAA"
	keyB = "AKIABBBBBBBBBBBBBBBB"
)

func writeCredentials(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("[default]\naws_access_key_id = "+keyA+"\naws_secret_access_key = secretA\n"+
		"[ci]\naws_access_key_id = "+keyB+"\naws_secret_access_key = secretB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestClientCommandsFindCredentials checks where shoal's client commands find
// the keys they sign with: the SDKs' environment variables first, then shoal's
// own file in the default data directory, else no signature.
func TestClientCommandsFindCredentials(t *testing.T) {
	srv := newSignedServer(t, &sigv4.Key{Profile: "default", AccessKeyID: keyA, SecretAccessKey: "secretA"},
		&sigv4.Key{Profile: "ci", AccessKeyID: keyB, SecretAccessKey: "secretB"},
		&sigv4.Key{Profile: "env", AccessKeyID: "AKIAENVENVENVENVENVE", SecretAccessKey: "secretE"})
	tests := []struct {
		name string
		env  map[string]string
		// shoalDir writes ./.shoal/credentials; sharedFile writes a file that
		// AWS_SHARED_CREDENTIALS_FILE names.
		shoalDir, sharedFile bool
		want                 string
	}{
		{name: "shoal's file in the default data directory", shoalDir: true, want: "default"},
		{name: "AWS_SHARED_CREDENTIALS_FILE", sharedFile: true, want: "default"},
		{name: "AWS_PROFILE in it", sharedFile: true, env: map[string]string{"AWS_PROFILE": "ci"}, want: "ci"},
		{name: "AWS_PROFILE in shoal's file", shoalDir: true, env: map[string]string{"AWS_PROFILE": "ci"}, want: "ci"},
		{name: "keys in the environment first", shoalDir: true, env: map[string]string{
			"AWS_ACCESS_KEY_ID": "AKIAENVENVENVENVENVE", "AWS_SECRET_ACCESS_KEY": "secretE"}, want: "env"},
		{name: "nothing: unsigned", want: "unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			t.Setenv("HOME", dir) // no ~/.aws
			for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
				"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
				t.Setenv(v, "")
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.shoalDir {
				writeCredentials(t, filepath.Join(dir, ".shoal", "credentials"))
			}
			if tt.sharedFile {
				path := filepath.Join(dir, "elsewhere", "keys")
				writeCredentials(t, path)
				t.Setenv("AWS_SHARED_CREDENTIALS_FILE", path)
			}
			before := len(srv.signers())
			for _, args := range [][]string{{"fn", "list"}, {"cp", "list"}, {"fleet"}, {"cluster", "status"}} {
				if out, errOut, code := runShoal(t, append(args, "--endpoint-url", srv.URL)...); code != 0 {
					t.Fatalf("%v: exit %d: %s %s", args, code, out, errOut)
				}
			}
			for _, got := range srv.signers()[before:] {
				if got != tt.want {
					t.Fatalf("signed by %v, want %s", srv.signers()[before:], tt.want)
				}
			}
		})
	}
}

// TestClientCommandsSayWhyTheyWereRefused: an authentication failure prints
// Lambda's error code and message, how shoal finds credentials, and nothing
// about "https" on a plain http:// endpoint.
func TestClientCommandsSayWhyTheyWereRefused(t *testing.T) {
	srv := newSignedServer(t, &sigv4.Key{Profile: "default", AccessKeyID: keyA, SecretAccessKey: "secretA"})
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("HOME", dir)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKNOWNKEY0000")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "whatever")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"fn", "list"}, "shoal: ListFunctions: UnrecognizedClientException: The security token included in the request is invalid.\n"},
		{[]string{"fleet"}, "shoal: fleet: UnrecognizedClientException: The security token included in the request is invalid.\n"},
		{[]string{"cluster", "status"}, "shoal: cluster: UnrecognizedClientException: The security token included in the request is invalid.\n"},
		{[]string{"fn", "logs", "f"}, "shoal: logs: UnrecognizedClientException: The security token included in the request is invalid.\n"},
	}
	for _, tt := range tests {
		_, errOut, code := runShoal(t, append(tt.args, "--endpoint-url", srv.URL)...)
		if code == 0 || !strings.HasPrefix(errOut, tt.want) {
			t.Errorf("%v: exit %d, printed %q, want it to start %q", tt.args, code, errOut, tt.want)
		}
		if !strings.Contains(errOut, "AWS_SHARED_CREDENTIALS_FILE") || strings.Contains(errOut, "https") {
			t.Errorf("%v: printed %q", tt.args, errOut)
		}
	}
	// A shoal that is not there: the operation and the refused connection.
	_, errOut, _ := runShoal(t, "fn", "list", "--endpoint-url", "http://127.0.0.1:1")
	if !strings.HasPrefix(errOut, "shoal: ListFunctions: Get \"http://127.0.0.1:1/2015-03-31/functions") ||
		!strings.Contains(errOut, "connection refused") || strings.Contains(errOut, "https") {
		t.Errorf("unreachable: printed %q", errOut)
	}
}
