package runtimeapi

import (
	"net/http"
	"strings"
)

const (
	prefix         = "/2018-06-01/runtime/"
	invocationPath = "invocation/"
)

type route int

const (
	routeNotFound route = iota
	routeNext
	routeResponse
	routeError
	routeInitError
)

// parsePath maps a request path to its endpoint and, for per-invocation
// endpoints, the request id. Ids are opaque: any non-empty segment without
// a slash.
func parsePath(p string) (route, string) {
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok {
		return routeNotFound, ""
	}
	if rest == "init/error" {
		return routeInitError, ""
	}
	rest, ok = strings.CutPrefix(rest, invocationPath)
	if !ok {
		return routeNotFound, ""
	}
	if rest == "next" {
		return routeNext, ""
	}
	slash := strings.IndexByte(rest, '/')
	if slash <= 0 {
		return routeNotFound, ""
	}
	id, what := rest[:slash], rest[slash+1:]
	switch what {
	case "response":
		return routeResponse, id
	case "error":
		return routeError, id
	}
	return routeNotFound, ""
}

// ServeHTTP routes the four endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, id := parsePath(r.URL.Path)
	switch rt {
	case routeNext:
		if r.Method != http.MethodGet {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
			return
		}
		s.handleNext(w, r)
	case routeResponse:
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
			return
		}
		s.handleResponse(w, r, id)
	case routeError:
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
			return
		}
		s.handleError(w, r, id)
	case routeInitError:
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
			return
		}
		s.handleInitError(w, r)
	default:
		writeError(w, http.StatusNotFound, "NotFound", "unknown Runtime API path")
	}
}
