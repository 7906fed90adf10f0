package runtimeapi

import "net/http"

// handleInitError serves POST /runtime/init/error: the runtime could not
// initialise. The agent fails the environment's start with it.
func (s *Server) handleInitError(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, MaxResponseBytes)
	if err != nil {
		body = nil
	}
	typ, payload := errorPayload(r.Header.Get(hdrErrorType), body)
	if typ == "Unhandled" {
		typ = "Runtime.InitError"
	}
	s.mu.Lock()
	first := !s.initErr
	s.initErr = true
	s.mu.Unlock()
	if first && s.cfg.OnInitError != nil {
		s.cfg.OnInitError(typ, payload)
	}
	writeAccepted(w)
}
