package runtimeapi

import (
	"errors"
	"io"
	"net/http"
)

var statusOK = []byte(`{"status":"OK"}` + "\n")

// errResponseTooLarge marks a body over MaxResponseBytes.
var errResponseTooLarge = errors.New("runtimeapi: response too large")

// readBody reads a request body up to limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, errResponseTooLarge
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) > limit {
		return nil, errResponseTooLarge
	}
	return buf, nil
}

// tooLargePayload is what the caller receives for an oversized response.
var tooLargePayload = []byte(`{"errorMessage":"Response payload size exceeded maximum allowed payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}`)

// handleResponse serves POST /runtime/invocation/{id}/response. A response
// for a caller that has gone away is still accepted (202) and dropped.
func (s *Server) handleResponse(w http.ResponseWriter, r *http.Request, id string) {
	body, err := readBody(r, MaxResponseBytes)
	if errors.Is(err, errResponseTooLarge) {
		if s.settle(id, Outcome{Payload: tooLargePayload, Error: true, ErrorType: "Function.ResponseSizeTooLarge"}) {
			writeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
				"Exceeded maximum allowed payload size (6291556 bytes).")
			return
		}
		writeInvalidID(w)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "reading body: "+err.Error())
		return
	}
	if !s.settle(id, Outcome{Payload: body}) {
		writeInvalidID(w)
		return
	}
	writeAccepted(w)
}

func writeAccepted(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{"16"}
	h["Date"] = nil
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(statusOK)
}

func writeInvalidID(w http.ResponseWriter) {
	writeError(w, http.StatusBadRequest, "InvalidRequestID", "Invalid request ID")
}

// writeError answers the runtime with Lambda's Runtime API error shape.
func writeError(w http.ResponseWriter, status int, errorType, msg string) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(errorJSON(errorType, msg))
}
