package runtimeapi

import "encoding/json"

// handleError serves POST /runtime/invocation/{id}/error: the handler
// failed. The body (Lambda's error JSON) is passed through as the caller's
// payload; the type comes from Lambda-Runtime-Function-Error-Type, else
// from the body's errorType.
func (s *Server) handleError(id string, req *request, body []byte) int {
	typ, payload := errorPayload(req.errorType, body)
	if !s.settle(id, Outcome{Payload: payload, Error: true, ErrorType: typ}) {
		return 400
	}
	return 202
}

// errorPayload decides the error type and the payload the caller sees for
// an error the runtime posted.
func errorPayload(headerType string, body []byte) (string, []byte) {
	var probe struct {
		ErrorType string `json:"errorType"`
	}
	valid := len(body) > 0 && json.Unmarshal(body, &probe) == nil
	typ := headerType
	if typ == "" {
		typ = probe.ErrorType
	}
	if typ == "" {
		typ = "Unhandled"
	}
	if !valid {
		return typ, errorJSON(typ, string(body))
	}
	return typ, body
}

// errorJSON renders {"errorMessage":…,"errorType":…}.
func errorJSON(errorType, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}{msg, errorType})
	return b
}
