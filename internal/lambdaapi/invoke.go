package lambdaapi

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/shoal-dev/shoal/internal/asyncq"
	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Invoke header names in Go's canonical form, so the hot path indexes the header map
// directly.
const (
	hdrInvocationType  = "X-Amz-Invocation-Type"
	hdrLogType         = "X-Amz-Log-Type"
	hdrClientContext   = "X-Amz-Client-Context"
	hdrExecutedVersion = "X-Amz-Executed-Version"
	hdrFunctionError   = "X-Amz-Function-Error"
	hdrLogResult       = "X-Amz-Log-Result"
)

// maxClientContextBytes is Lambda's limit on the base64 client context.
const maxClientContextBytes = 3583

var jsonContentType = []string{"application/json"}

// invoke is Invoke: POST /2015-03-31/functions/{name}/invocations.
func (a *api) invoke(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	dryRun, event := false, false
	limit := a.cfg.MaxInvokeRequestBytes
	switch it := headerValue(r, hdrInvocationType); it {
	case "", "RequestResponse":
	case "DryRun":
		dryRun = true
	case "Event":
		event, limit = true, min(limit, asyncq.MaxEventBytes)
	default:
		return validationError(it, "invocationType", "Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
	}
	tail := false
	switch lt := headerValue(r, hdrLogType); lt {
	case "", "None":
	case "Tail":
		tail = true
	default:
		return validationError(lt, "logType", "Member must satisfy enum value set: [Tail, None]")
	}
	clientContext, err := decodeClientContext(headerValue(r, hdrClientContext))
	if err != nil {
		return err
	}
	payload, err := a.readPayload(r, limit)
	if err != nil {
		return err
	}
	v, err := a.reg.ResolveInvocation(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		if ref.Qualifier == "" && awserr.Is(err, awserr.CodeResourceNotFound) {
			return awserr.NotFound("Function not found: %s", a.reg.FunctionARN(ref.Name, registry.Latest))
		}
		return err
	}
	if dryRun {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	req := &InvokeRequest{
		Version:       v,
		Qualifier:     ref.Qualifier,
		InvokedARN:    a.reg.FunctionARN(ref.Name, ref.Qualifier),
		RequestID:     requestID(w),
		Payload:       payload,
		ClientContext: clientContext,
		TailLog:       tail,
	}
	if event {
		req.TailLog = false
		return a.invokeEvent(w, r, req)
	}
	res, err := a.inv.Invoke(r.Context(), req)
	if err != nil {
		return err
	}
	body, fnErr := res.Payload, res.FunctionError
	if len(body) > a.cfg.MaxInvokeResponseBytes {
		body = []byte(`{"errorMessage":"Response payload size exceeded maximum allowed payload size (` +
			strconv.Itoa(a.cfg.MaxInvokeResponseBytes) + ` bytes).","errorType":"Function.ResponseSizeTooLarge"}`)
		fnErr = "Unhandled"
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	executed := res.ExecutedVersion
	if executed == "" {
		executed = v.Version
	}
	h[hdrExecutedVersion] = []string{executed}
	if fnErr != "" {
		h[hdrFunctionError] = []string{fnErr}
	}
	if tail {
		h[hdrLogResult] = []string{base64.StdEncoding.EncodeToString(res.LogTail)}
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

func headerValue(r *http.Request, canonicalKey string) string {
	if v := r.Header[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// decodeClientContext returns the JSON in a base64 X-Amz-Client-Context.
func decodeClientContext(enc string) (string, error) {
	if enc == "" {
		return "", nil
	}
	if len(enc) > maxClientContextBytes {
		return "", validationError(enc, "clientContext", "Member must have length less than or equal to 3583")
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || !json.Valid(b) {
		return "", awserr.InvalidRequestContent("Client context must be a valid Base64-encoded JSON object.")
	}
	return string(b), nil
}

// readPayload reads the invoke body within limit bytes and checks it is JSON.
// An empty payload is sent to the function as {}, as Lambda does.
func (a *api) readPayload(r *http.Request, limit int) ([]byte, error) {
	tooLarge := func() error {
		return &awserr.Error{Code: awserr.CodeRequestTooLarge, Status: http.StatusRequestEntityTooLarge, Type: "User",
			Message: "Request must be smaller than " + strconv.Itoa(limit) + " bytes for the InvokeFunction operation"}
	}
	if r.ContentLength > int64(limit) {
		drain(r)
		return nil, tooLarge()
	}
	var b []byte
	var err error
	if r.ContentLength >= 0 {
		b = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	}
	if err != nil {
		return nil, awserr.InvalidRequestContent("Could not read request body: %v", err)
	}
	if len(b) > limit {
		drain(r)
		return nil, tooLarge()
	}
	if len(b) == 0 {
		return []byte("{}"), nil
	}
	if !json.Valid(b) || !utf8.Valid(b) {
		// Refused in the words of Lambda's parser, which Go's need not share
		// (jsonsyntax.go); what that parser accepts goes through.
		if msg := jacksonSyntaxError(b); msg != "" {
			return nil, awserr.InvalidRequestContent("Could not parse request body into json: Could not parse payload into json: %s", msg)
		}
	}
	return b, nil
}
