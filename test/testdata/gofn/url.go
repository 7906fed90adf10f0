package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// isURLEvent reports whether raw is a function URL's event (payload format 2.0,
// which begins with its version and route key).
func isURLEvent(raw json.RawMessage) bool {
	return bytes.HasPrefix(raw, []byte(`{"version":"2.0","routeKey":"$default"`))
}

// handleURL answers a function URL's request by its "op" query parameter:
//
//	(none)   200 with the event as it arrived (JSON) and an x-echo header
//	status   the status of ?code=, a header, two cookies and a text body
//	binary   the 256 byte values, base64-encoded as isBase64Encoded asks
//	raw      a JSON object without statusCode (Lambda answers it as it is)
//	body     200 application/json with the request's body (the benchmarks' echo)
//	error    a function error
//	stream   a streamed response (RESPONSE_STREAM): status 201, a header, a
//	         cookie, "first chunk;", a pause of ?ms= (or until a GET of
//	         ?gate= answers), "second chunk"
//	big      a streamed body of ?mb= megabytes (streambig's pattern)
func handleURL(ctx context.Context, raw json.RawMessage) (any, error) {
	var req events.LambdaFunctionURLRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, err
	}
	q := req.QueryStringParameters
	switch q["op"] {
	case "":
		return events.LambdaFunctionURLResponse{StatusCode: 200,
			Headers: map[string]string{"content-type": "application/json", "x-echo": "yes"}, Body: string(raw)}, nil
	case "status":
		code, _ := strconv.Atoi(q["code"])
		return events.LambdaFunctionURLResponse{StatusCode: code,
			Headers: map[string]string{"content-type": "text/plain", "x-custom": "custom value"},
			Cookies: []string{"a=1; Path=/", "b=2; HttpOnly"}, Body: "status " + q["code"]}, nil
	case "binary":
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"content-type": "application/octet-stream"},
			Body: base64.StdEncoding.EncodeToString(b), IsBase64Encoded: true}, nil
	case "raw":
		return map[string]any{"hello": "world", "n": 1}, nil
	case "body":
		return events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"content-type": "application/json"}, Body: req.Body}, nil
	case "error":
		return nil, errors.New("the URL handler failed")
	case "stream":
		ms, _ := strconv.Atoi(q["ms"])
		pr, pw := io.Pipe()
		go func() {
			_, _ = pw.Write([]byte("first chunk;"))
			second := "second chunk"
			if g := q["gate"]; g != "" {
				if err := waitFor(g); err != nil {
					second = "the gate failed: " + err.Error()
				}
			} else {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			_, _ = io.Copy(pw, strings.NewReader(second))
			pw.Close()
		}()
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 201,
			Headers: map[string]string{"content-type": "text/plain", "x-streamed": "yes"}, Cookies: []string{"s=1"}, Body: pr}, nil
	case "big":
		mb, _ := strconv.Atoi(q["mb"])
		body, _ := stream(event{Op: "streambig", MB: mb})
		return &events.LambdaFunctionURLStreamingResponse{StatusCode: 200,
			Headers: map[string]string{"content-type": "application/octet-stream"}, Body: body}, nil
	}
	return nil, errors.New("unknown op " + q["op"])
}
