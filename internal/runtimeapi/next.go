package runtimeapi

import "strconv"

// Header names of invocation/next, as Lambda sends them.
const (
	hdrRequestID       = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline        = "Lambda-Runtime-Deadline-Ms"
	hdrInvokedARN      = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID         = "Lambda-Runtime-Trace-Id"
	hdrClientContext   = "Lambda-Runtime-Client-Context"
	hdrCognitoIdentity = "Lambda-Runtime-Cognito-Identity"
	hdrTenantID        = "Lambda-Runtime-Aws-Tenant-Id"
	hdrErrorType       = "Lambda-Runtime-Function-Error-Type"
	hdrResponseMode    = "Lambda-Runtime-Function-Response-Mode"
)

// handleNext serves GET /runtime/invocation/next: a long poll that returns
// the next submitted invocation. It reports whether the connection can go on.
func (s *Server) handleNext(c *conn) bool {
	s.readyOnce.Do(func() { close(s.ready) })
	inv := s.take(s.closed)
	if inv == nil {
		c.writeError(503, "Runtime.Closed", "environment is shutting down", true)
		return false
	}
	if c.peerClosed() {
		// The poller left while waiting: give the invocation to the next one.
		s.requeue(inv)
		return false
	}
	if s.cfg.OnTake != nil {
		s.cfg.OnTake(inv)
	}
	b := append(c.out[:0], "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"+hdrRequestID+": "...)
	b = appendValue(b, inv.ID)
	b = append(b, "\r\n"+hdrDeadline+": "...)
	b = strconv.AppendInt(b, inv.Deadline.UnixMilli(), 10)
	b = append(b, "\r\n"+hdrInvokedARN+": "...)
	b = appendValue(b, inv.InvokedARN)
	if inv.TraceID != "" {
		b = append(b, "\r\n"+hdrTraceID+": "...)
		b = appendValue(b, inv.TraceID)
	}
	if inv.ClientContext != "" {
		b = append(b, "\r\n"+hdrClientContext+": "...)
		b = appendValue(b, inv.ClientContext)
	}
	if inv.CognitoIdentity != "" {
		b = append(b, "\r\n"+hdrCognitoIdentity+": "...)
		b = appendValue(b, inv.CognitoIdentity)
	}
	if inv.TenantID != "" {
		b = append(b, "\r\n"+hdrTenantID+": "...)
		b = appendValue(b, inv.TenantID)
	}
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(inv.Payload)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, inv.Payload...)
	if cap(b) <= 64<<10 {
		c.out = b[:0]
	}
	if _, err := c.w.Write(b); err != nil {
		s.requeue(inv)
		return false
	}
	if s.cfg.WorkerConnections {
		c.held = append(c.held, inv.ID)
	}
	return true
}

// appendValue appends a header value with control characters (a JSON client
// context may hold newlines) turned into spaces, so a value can never break
// the response's framing.
func appendValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < ' ' || c == 0x7f {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}
