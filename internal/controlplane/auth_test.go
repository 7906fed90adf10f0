package controlplane

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/sigv4"
)

func TestConfigAuth(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		want    Config
		wantErr string
	}{
		{name: "defaults", cfg: Config{DataDir: "d"},
			want: Config{DataDir: "d", Auth: AuthSigV4, CredentialsFile: filepath.Join("d", "credentials"), MetricsListen: "127.0.0.1:9100"}},
		{name: "auth none and a file of one's own", cfg: Config{DataDir: "d", Auth: AuthNone, CredentialsFile: "/etc/keys",
			MetricsListen: "0.0.0.0:9200"},
			want: Config{DataDir: "d", Auth: AuthNone, CredentialsFile: "/etc/keys", MetricsListen: "0.0.0.0:9200"}},
		{name: "unknown auth", cfg: Config{Auth: "basic"}, wantErr: `auth "basic": want sigv4 or none`},
		{name: "metrics address without a port", cfg: Config{MetricsListen: "localhost"}, wantErr: `metrics listen address "localhost"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := Config{DataDir: tt.cfg.DataDir, Auth: tt.cfg.Auth, CredentialsFile: tt.cfg.CredentialsFile, MetricsListen: tt.cfg.MetricsListen}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestAuthHandler: a refused request gets Lambda's error and never reaches the
// API; an accepted one reaches it with its body whole.
func TestAuthHandler(t *testing.T) {
	keys, err := sigv4.StaticKeys(&sigv4.Key{Profile: "default", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", SecretAccessKey: "s"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := sigv4.New(sigv4.Config{Region: "us-east-1"}, keys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reached []string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reached = append(reached, r.URL.Path+" "+string(b))
	})
	h := authHandler(v, api, slog.New(slog.DiscardHandler))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("DELETE", "/2015-03-31/functions/victim", nil))
	if rec.Code != http.StatusForbidden || rec.Header().Get("X-Amzn-Errortype") != "MissingAuthenticationTokenException" ||
		rec.Header().Get("X-Amzn-Requestid") == "" || rec.Body.String() != `{"message":"Missing Authentication Token"}` {
		t.Errorf("unsigned: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}

	r := httptest.NewRequest("POST", "http://127.0.0.1:9000/2015-03-31/functions/f/invocations", strings.NewReader(`{"a":1}`))
	creds := credentials.NewStaticCredentialsProvider("AKIAAAAAAAAAAAAAAAAA", "s", "")
	if err := sigv4.Sign(context.Background(), r, creds, "us-east-1", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("signed: %d %s", rec.Code, rec.Body)
	}
	if diff := cmp.Diff([]string{`/2015-03-31/functions/f/invocations {"a":1}`}, reached); diff != "" {
		t.Errorf("requests that reached the API (-want +got):\n%s", diff)
	}
}
