package funcurl

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// FuzzMapResponse feeds arbitrary function answers to the response mapping: it
// must answer or refuse, never panic, and a status it gives is an HTTP status.
func FuzzMapResponse(f *testing.F) {
	for _, s := range []string{`{"statusCode":200,"body":"x"}`, `"s"`, `[1,2]`, `{"statusCode":"404","isBase64Encoded":true,"body":"AA=="}`,
		`{"statusCode":200,"headers":{"a":{"b":1}},"cookies":["c"]}`, `nul`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		status, _, _, _, err := mapResponse(payload)
		if err == nil && (status < 100 || status > 599) {
			t.Fatalf("status %d for %q", status, payload)
		}
	})
}

// FuzzEvent builds events from arbitrary paths, queries, headers and bodies:
// each must be valid JSON.
func FuzzEvent(f *testing.F) {
	f.Add("/a/b", "x=1&x=2", "X-H", "v", "c=1; d", "text/plain", []byte("body"))
	f.Add("/%zz", "%%=;&", "Cookie", "\x00\xff", "", "application/octet-stream", []byte{0xff, 0})
	f.Fuzz(func(t *testing.T, path, query, hname, hvalue, cookie, ct string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "http://h/", nil)
		r.URL = &url.URL{Path: path, RawQuery: query}
		if hname != "" {
			r.Header[hname] = []string{hvalue}
		}
		if cookie != "" {
			r.Header["Cookie"] = []string{cookie}
		}
		r.Header["Content-Type"] = []string{ct}
		ev := buildEvent(nil, &eventInput{r: r, id: "id", rawPath: path, body: body, requestID: "rid",
			accountID: "anonymous", now: time.Unix(1, 0), domain: "d", port: "1"})
		if !json.Valid(ev) {
			t.Fatalf("invalid event: %s", ev)
		}
	})
}
