package runtimeapi

// tooLargePayload is what the caller receives for an oversized response.
var tooLargePayload = []byte(`{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`)

// handleResponse serves POST /runtime/invocation/{id}/response and returns
// the status to answer. A response for a caller that has gone away is still
// accepted (202) and dropped. A streamed response that failed (error
// trailers) becomes an error.
func (s *Server) handleResponse(id string, req *request, body []byte) int {
	o := Outcome{Payload: body, ContentType: req.contentType}
	if req.errorType != "" {
		payload := req.errorBody
		if payload == nil {
			_, payload = errorPayload(req.errorType, nil)
		}
		o = Outcome{Error: true, ErrorType: req.errorType, Payload: payload}
	}
	if !s.settle(id, o) {
		return 400
	}
	return 202
}
