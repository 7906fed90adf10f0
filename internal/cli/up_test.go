package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBanner(t *testing.T) {
	for _, v := range credentialEnv {
		t.Setenv(v, "")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		name string
		b    banner
		env  map[string]string
		want []string
		not  []string
	}{
		{name: "signed API", b: banner{addr: "127.0.0.1:9000", metricsAddr: "127.0.0.1:9100", dataDir: ".shoal",
			credentials: filepath.Join(".shoal", "credentials"), region: "us-east-1"},
			want: []string{
				"shoal is up: Lambda API on http://127.0.0.1:9000 (data in .shoal)",
				"The API takes requests signed with a key of " + filepath.Join(dir, ".shoal", "credentials") + ". In another terminal:",
				"  export AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, ".shoal", "credentials") + " AWS_DEFAULT_REGION=us-east-1\n",
				"  shoal fn create hello --runtime provided.al2023 --code ./pkg --endpoint-url http://127.0.0.1:9000",
				"Prometheus metrics: http://127.0.0.1:9100/metrics",
			},
			not: []string{"unset", "--auth none"}},
		{name: "keys in the environment would win", b: banner{addr: "a:1", metricsAddr: "b:2", credentials: "/k", region: "eu-west-1"},
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "x", "AWS_PROFILE": "p"},
			want: []string{"export AWS_SHARED_CREDENTIALS_FILE=/k AWS_DEFAULT_REGION=eu-west-1", "  unset AWS_ACCESS_KEY_ID AWS_PROFILE "}},
		{name: "auth none", b: banner{addr: "a:1", metricsAddr: "b:2"},
			want: []string{"The API takes any request (--auth none)."}, not: []string{"export"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			printBanner(&out, tt.b)
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("banner lacks %q:\n%s", w, out.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out.String(), n) {
					t.Errorf("banner has %q:\n%s", n, out.String())
				}
			}
		})
	}
}

func TestUsageRetentionFlag(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"90d", 90 * 24 * time.Hour, false},
		{"2160h", 2160 * time.Hour, false},
		{"0", -1, false}, // for ever
		{"-1h", 0, true},
		{"0d", 0, true},
		{"soon", 0, true},
	}
	for _, c := range cases {
		var d time.Duration
		err := retentionFlag{&d}.Set(c.in)
		if (err != nil) != c.err || !c.err && d != c.want {
			t.Errorf("%q: %v, %v; want %v (error %v)", c.in, d, err, c.want, c.err)
		}
	}
	var unset time.Duration
	if s := (retentionFlag{&unset}).String(); s != "400d" {
		t.Errorf("default shown as %q", s)
	}
	// shoal up's flag is wired to the control plane's setting.
	cmd := newUpCmd()
	if err := cmd.Flags().Set("usage-retention", "30d"); err != nil {
		t.Fatal(err)
	}
	if got := cmd.Flags().Lookup("usage-retention").Value.String(); got != (30 * 24 * time.Hour).String() {
		t.Errorf("--usage-retention 30d reads back %q", got)
	}
}

func TestMaxInstanceLifetimeFlag(t *testing.T) {
	cmd := newUpCmd()
	if got := cmd.Flags().Lookup("max-instance-lifetime").Value.String(); got != "14d" {
		t.Errorf("default shown as %q", got)
	}
	for _, c := range []struct {
		in   string
		want string
	}{{"20s", "20s"}, {"7d", "168h0m0s"}, {"72h", "72h0m0s"}} {
		if err := cmd.Flags().Set("max-instance-lifetime", c.in); err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got := cmd.Flags().Lookup("max-instance-lifetime").Value.String(); got != c.want {
			t.Errorf("--max-instance-lifetime %s reads back %q, want %q", c.in, got, c.want)
		}
	}
	for _, bad := range []string{"1s", "never", "0"} {
		if err := cmd.Flags().Set("max-instance-lifetime", bad); err == nil {
			t.Errorf("--max-instance-lifetime %s accepted", bad)
		}
	}
}
