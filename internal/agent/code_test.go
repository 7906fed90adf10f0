package agent

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"
)

func TestCodeKey(t *testing.T) {
	sum := sha256.Sum256([]byte("package"))
	tests := []struct {
		name, sha, want string
		ok              bool
	}{
		{"base64 of a sha256", base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sum[:]), true},
		{"not base64", "not/base64!", "", false},
		{"wrong length", base64.StdEncoding.EncodeToString(sum[:16]), "", false},
		{"empty", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := codeKey(tc.sha)
			if got != tc.want || ok != tc.ok {
				t.Errorf("codeKey(%q) = %q, %v; want %q, %v", tc.sha, got, ok, tc.want, tc.ok)
			}
		})
	}
}
