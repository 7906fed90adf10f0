package sigv4

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/clock"
)

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Profile
		wantErr string
	}{
		{name: "one profile", in: "[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n",
			want: []Profile{{Profile: "default", AccessKeyID: "AKIA1", SecretAccessKey: "s1"}}},
		{name: "several, comments, blanks, other keys, nested values", in: `# shoal
; another comment
[default]
aws_access_key_id=AKIA1
aws_secret_access_key=s1
region = us-east-1

[ ci ]
AWS_ACCESS_KEY_ID = AKIA2
aws_secret_access_key = s2/with+chars=
s3 =
  max_concurrent_requests = 20
[role-only]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default
`, want: []Profile{
			{Profile: "default", AccessKeyID: "AKIA1", SecretAccessKey: "s1"},
			{Profile: "ci", AccessKeyID: "AKIA2", SecretAccessKey: "s2/with+chars="}}},
		{name: "a section in two parts", in: "[a]\naws_access_key_id = K\n[b]\n[a]\naws_secret_access_key = S\n",
			want: []Profile{{Profile: "a", AccessKeyID: "K", SecretAccessKey: "S"}}},
		{name: "key without secret", in: "[a]\naws_access_key_id = K\n"},
		{name: "unclosed section", in: "[default\n", wantErr: "line 1: section"},
		{name: "not key=value", in: "[default]\nwhat\n", wantErr: "line 2: want key = value"},
		{name: "key before a section", in: "aws_access_key_id = K\n", wantErr: "line 1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCredentials(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("profiles (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnsureCredentialsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "credentials")
	created, err := EnsureCredentialsFile(path)
	if err != nil || !created {
		t.Fatalf("EnsureCredentialsFile: %v, created %t", err, created)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", info.Mode().Perm())
	}
	profiles, err := ReadCredentialsFile(path)
	if err != nil || len(profiles) != 1 || profiles[0].Profile != "default" {
		t.Fatalf("profiles %+v, %v", profiles, err)
	}
	p := profiles[0]
	if !regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`).MatchString(p.AccessKeyID) {
		t.Errorf("access key id %q is not shaped as AWS's", p.AccessKeyID)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9+/]{40}$`).MatchString(p.SecretAccessKey) {
		t.Errorf("secret %q is not 40 characters of base64", p.SecretAccessKey)
	}
	// A second call keeps the file; a fresh one gets another key.
	before, _ := os.ReadFile(path)
	if created, err := EnsureCredentialsFile(path); err != nil || created {
		t.Fatalf("second EnsureCredentialsFile: %v, created %t", err, created)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the existing file was rewritten")
	}
	other := filepath.Join(t.TempDir(), "credentials")
	if _, err := EnsureCredentialsFile(other); err != nil {
		t.Fatal(err)
	}
	if q, _ := ReadCredentialsFile(other); q[0].AccessKeyID == p.AccessKeyID || q[0].SecretAccessKey == p.SecretAccessKey {
		t.Error("two files got the same key")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only the credentials file", len(entries))
	}
}

func TestKeysFollowTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credentials")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n")
	clk := clock.NewFake(testTime)
	keys, err := OpenKeys(path, clk)
	if err != nil {
		t.Fatal(err)
	}
	if keys.Lookup("AKIA1") == nil || keys.Lookup("AKIA2") != nil {
		t.Fatal("lookups of the first file")
	}
	write("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n" +
		"[ci]\naws_access_key_id = AKIA2\naws_secret_access_key = s2\n")
	// Same size and time stamp would hide the change; make the time differ.
	if err := os.Chtimes(path, testTime, testTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if keys.Lookup("AKIA2") != nil {
		t.Fatal("the file was read again within a second")
	}
	clk.Advance(reloadEvery)
	if k := keys.Lookup("AKIA2"); k == nil || k.Profile != "ci" {
		t.Fatalf("added key: %+v", k)
	}
	write("[ci]\naws_access_key_id = AKIA2\naws_secret_access_key = s2\n")
	clk.Advance(reloadEvery)
	if keys.Lookup("AKIA1") != nil {
		t.Fatal("a removed key is still accepted")
	}
	write("[ci]\nbroken")
	clk.Advance(reloadEvery)
	if keys.Lookup("AKIA2") == nil {
		t.Fatal("a broken file dropped the keys read before it")
	}
}

func TestOpenKeysErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clash := filepath.Join(dir, "clash")
	if err := os.WriteFile(clash, []byte("[a]\naws_access_key_id = K\naws_secret_access_key = 1\n"+
		"[b]\naws_access_key_id = K\naws_secret_access_key = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeys(filepath.Join(dir, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenKeys(empty, nil); err == nil || !strings.Contains(err.Error(), "no profile has") {
		t.Errorf("file without keys: %v", err)
	}
	if _, err := OpenKeys(clash, nil); err == nil || !strings.Contains(err.Error(), "two secrets") {
		t.Errorf("one key, two secrets: %v", err)
	}
}
