package lambdaapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/guard"
)

// TestHandlerPanicAnswersServiceException: an invocation whose handler
// panics (here the invoker behind it) is answered 500 ServiceException, and
// the API serves the next request.
func TestHandlerPanicAnswersServiceException(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	e.inv.mu.Lock()
	e.inv.respond = func(req *InvokeRequest) (*InvokeResult, error) {
		if string(req.Payload) == `"boom"` {
			panic("the invoker broke")
		}
		return &InvokeResult{Payload: req.Payload, ExecutedVersion: "$LATEST"}, nil
	}
	e.inv.mu.Unlock()
	before := guard.Panics()
	_, err := e.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`"boom"`)})
	if se := wantErr[*types.ServiceException](t, err); aws.ToString(se.Message) != "An internal error occurred." {
		t.Errorf("message %q", aws.ToString(se.Message))
	}
	if guard.Panics() != before+1 {
		t.Errorf("panics counted: %d, want %d", guard.Panics(), before+1)
	}
	out, err := e.client.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String("fn"), Payload: []byte(`"next"`)})
	if err != nil || string(out.Payload) != `"next"` {
		t.Fatalf("the next invocation: %v %s", err, out.Payload)
	}
}

// TestRecovering: another handler wrapped in Recovering answers a panic
// ServiceException without what it had set, and a handler that panics after
// it began its response has its connection cut, so that the client sees a
// broken response rather than a complete one.
func TestRecovering(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		panic("before the response")
	})
	mux.HandleFunc("/late", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, strings.Repeat("partial ", 100))
		w.(http.Flusher).Flush()
		panic("during the response")
	})
	srv := httptest.NewServer(Recovering(mux, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/early")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 500 || resp.Header.Get("X-Amzn-ErrorType") != "ServiceException" ||
		resp.Header.Get("X-Amz-Function-Error") != "" || body["Message"] != "An internal error occurred." {
		t.Errorf("early panic: %d %v %v", resp.StatusCode, resp.Header, body)
	}

	resp, err = http.Get(srv.URL + "/late")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a response cut by a panic read as complete")
	}
	if resp, err := http.Get(srv.URL + "/early"); err != nil || resp.StatusCode != 500 {
		t.Fatalf("the server after the panics: %v", err)
	}
}
