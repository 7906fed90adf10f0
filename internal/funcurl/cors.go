package funcurl

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/registry"
)

// CORS as a function URL's configuration asks: Lambda answers preflight
// requests itself (without invoking the function or asking for credentials),
// and adds the CORS headers to the function's answers in place of any the
// function set.

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// allowedOrigin returns the Access-Control-Allow-Origin for origin, "" when the
// configuration does not allow it.
func allowedOrigin(c *registry.Cors, origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.AllowOrigins {
		switch {
		case o == "*":
			if c.AllowCredentials != nil && *c.AllowCredentials {
				return origin // credentials never go with a wildcard
			}
			return "*"
		case strings.EqualFold(strings.TrimSuffix(o, "/"), strings.TrimSuffix(origin, "/")):
			return origin
		}
	}
	return ""
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if x == "*" || strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// preflight answers a CORS preflight request: 200, with the allowances when
// the origin, the method and the headers asked for are allowed, and none
// otherwise (the browser then refuses the request).
func preflight(w http.ResponseWriter, r *http.Request, c *registry.Cors) {
	h := w.Header()
	origin := allowedOrigin(c, r.Header.Get("Origin"))
	method := r.Header.Get("Access-Control-Request-Method")
	asked := r.Header.Get("Access-Control-Request-Headers")
	ok := origin != "" && containsFold(c.AllowMethods, method)
	if ok && asked != "" {
		for name := range strings.SplitSeq(asked, ",") {
			if name = strings.TrimSpace(name); name != "" && !containsFold(c.AllowHeaders, name) {
				ok = false
			}
		}
	}
	h["Vary"] = []string{"Origin"}
	if ok {
		h["Access-Control-Allow-Origin"] = []string{origin}
		methods := strings.Join(c.AllowMethods, ",")
		if containsFold(c.AllowMethods, "*") {
			methods = method
		}
		h["Access-Control-Allow-Methods"] = []string{methods}
		if asked != "" {
			allowHeaders := strings.Join(c.AllowHeaders, ",")
			if containsFold(c.AllowHeaders, "*") {
				allowHeaders = asked
			}
			h["Access-Control-Allow-Headers"] = []string{allowHeaders}
		}
		if c.AllowCredentials != nil && *c.AllowCredentials {
			h["Access-Control-Allow-Credentials"] = []string{"true"}
		}
		if c.MaxAge != nil {
			h["Access-Control-Max-Age"] = []string{strconv.Itoa(*c.MaxAge)}
		}
	}
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusOK)
}

// applyCors sets the CORS headers of an answer to a request from origin,
// dropping those the function set.
func applyCors(h http.Header, c *registry.Cors, origin string) {
	if c == nil {
		return
	}
	for k := range h {
		if strings.HasPrefix(k, "Access-Control-") {
			delete(h, k)
		}
	}
	allowed := allowedOrigin(c, origin)
	if allowed == "" {
		return
	}
	h["Access-Control-Allow-Origin"] = []string{allowed}
	h.Add("Vary", "Origin")
	if c.AllowCredentials != nil && *c.AllowCredentials {
		h["Access-Control-Allow-Credentials"] = []string{"true"}
	}
	if len(c.ExposeHeaders) > 0 {
		h["Access-Control-Expose-Headers"] = []string{strings.Join(c.ExposeHeaders, ",")}
	}
}
