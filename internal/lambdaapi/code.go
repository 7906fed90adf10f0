package lambdaapi

import (
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// codeURL is GetFunction's Code.Location: where this API serves the package.
func (a *api) codeURL(r *http.Request, codeSha256 string) string {
	key, _ := registry.CodeKey(codeSha256)
	base := a.cfg.CodeBaseURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	u := base + "/shoal/v1/code/" + key
	if a.cfg.PresignURL != nil {
		u = a.cfg.PresignURL(r, u)
	}
	return u
}

// getCode serves a package by the hex form of its CodeSha256.
func (a *api) getCode(w http.ResponseWriter, r *http.Request) error {
	sha, ok := registry.CodeSha256FromKey(r.PathValue("sha"))
	if !ok {
		return awserr.NotFound("Code not found: %s", r.PathValue("sha"))
	}
	b, err := a.reg.Code(r.Context(), sha)
	if err != nil {
		return err
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/zip"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
