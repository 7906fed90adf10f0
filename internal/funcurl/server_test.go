package funcurl

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/lambdaapi"
	"github.com/shoal-dev/shoal/internal/registry"
)

// stubInvoker stands in for the router: the end-to-end tests run real
// functions behind the front door; here respond decides the answer.
type stubInvoker struct {
	respond func(req *lambdaapi.InvokeRequest) (*lambdaapi.InvokeResult, error)
	last    *lambdaapi.InvokeRequest
}

func (s *stubInvoker) Invoke(ctx context.Context, req *lambdaapi.InvokeRequest) (*lambdaapi.InvokeResult, error) {
	s.last = req
	return s.respond(req)
}

// keyAuth accepts requests whose Authorization header names its key.
type keyAuth struct{ key string }

func (a keyAuth) Authenticate(r *http.Request) (*Caller, error) {
	if !strings.Contains(r.Header.Get("Authorization"), "Credential="+a.key+"/") {
		return nil, errors.New("bad signature")
	}
	return &Caller{AccessKeyID: a.key, AccountID: "123456789012", UserARN: "arn:aws:iam::123456789012:user/u", UserID: a.key}, nil
}

func frontDoor(t *testing.T, auth Authenticator) (*registry.Registry, *stubInvoker, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Start(ctx, bus.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, b.JetStream(), registry.Config{})
	if err != nil {
		t.Fatal(err)
	}
	inv := &stubInvoker{}
	s, err := New(Config{}, Deps{Registry: reg, Invoker: inv, Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.Close(); reg.Close(); b.Close() })
	if _, _, err := reg.CreateFunction(ctx, registry.CreateFunctionInput{
		Config:  registry.Version{FunctionName: "fn", Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::123456789012:role/r"},
		ZipFile: zipOf(t),
	}); err != nil {
		t.Fatal(err)
	}
	return reg, inv, srv
}

func zipOf(t *testing.T) []byte {
	t.Helper()
	// The smallest zip: an empty archive's end record.
	return []byte{0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
}

func TestIAMURL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		auth   Authenticator
		header string
		status int
	}{
		{"no verifier", nil, "AWS4-HMAC-SHA256 Credential=AKID/x", 403},
		{"no signature", keyAuth{"AKID"}, "", 403},
		{"another key", keyAuth{"AKID"}, "AWS4-HMAC-SHA256 Credential=OTHER/x", 403},
		{"signed", keyAuth{"AKID"}, "AWS4-HMAC-SHA256 Credential=AKID/x", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, inv, srv := frontDoor(t, tc.auth)
			iam := registry.URLAuthIAM
			u, err := reg.CreateFunctionURL(context.Background(), "fn", "", registry.FunctionURLChange{AuthType: &iam})
			if err != nil {
				t.Fatal(err)
			}
			inv.respond = func(req *lambdaapi.InvokeRequest) (*lambdaapi.InvokeResult, error) {
				return &lambdaapi.InvokeResult{Payload: []byte(`{"statusCode":200,"body":"ok"}`)}, nil
			}
			req, _ := http.NewRequest("GET", srv.URL+"/"+u.ID+"/p", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				var ev events.LambdaFunctionURLRequest
				if err := json.Unmarshal(inv.last.Payload, &ev); err != nil {
					t.Fatal(err)
				}
				iam := ev.RequestContext.Authorizer
				if iam == nil || iam.IAM == nil || iam.IAM.AccessKey != "AKID" || ev.RequestContext.AccountID != "123456789012" {
					t.Errorf("event %s", inv.last.Payload)
				}
			}
		})
	}
}

// A streamed answer's HTTP metadata may come in any pieces.
func TestStreamPrelude(t *testing.T) {
	reg, inv, srv := frontDoor(t, nil)
	none, stream := registry.URLAuthNone, registry.URLInvokeStream
	u, err := reg.CreateFunctionURL(context.Background(), "fn", "", registry.FunctionURLChange{AuthType: &none, InvokeMode: &stream})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddPermission(context.Background(), "fn", "", registry.Statement{Sid: "p", Effect: "Allow", Principal: registry.Everyone,
		Action: "lambda:InvokeFunctionUrl"}, ""); err != nil {
		t.Fatal(err)
	}
	whole := `{"statusCode":207,"headers":{"x-a":"b"},"cookies":["c=1","d=2"]}` + strings.Repeat("\x00", 8) + "the body"
	for _, cut := range []int{1, 5, 40, len(whole) - 9, len(whole) - 8, len(whole) - 1} {
		inv.respond = func(req *lambdaapi.InvokeRequest) (*lambdaapi.InvokeResult, error) {
			req.Stream.Start(integrationType)
			for _, p := range []string{whole[:cut], whole[cut:]} {
				if _, err := req.Stream.Write([]byte(p)); err != nil {
					return nil, err
				}
			}
			return &lambdaapi.InvokeResult{Streamed: true}, nil
		}
		resp, err := http.Get(srv.URL + "/" + u.ID + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 207 || string(b) != "the body" || resp.Header.Get("X-A") != "b" || len(resp.Header.Values("Set-Cookie")) != 2 {
			t.Errorf("cut at %d: %d %v %q", cut, resp.StatusCode, resp.Header, b)
		}
	}
	// Metadata that never ends is a 502.
	inv.respond = func(req *lambdaapi.InvokeRequest) (*lambdaapi.InvokeResult, error) {
		req.Stream.Start(integrationType)
		_, _ = req.Stream.Write([]byte(`{"statusCode":200}`))
		return &lambdaapi.InvokeResult{Streamed: true}, nil
	}
	resp, err := http.Get(srv.URL + "/" + u.ID + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("unended metadata: %d", resp.StatusCode)
	}
}
