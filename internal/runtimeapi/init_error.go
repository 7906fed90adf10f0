package runtimeapi

// handleInitError serves POST /runtime/init/error: the runtime could not
// initialise. The agent fails the environment's start with it.
func (s *Server) handleInitError(req *request, body []byte) int {
	typ, payload := errorPayload(req.errorType, body)
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
	return 202
}
