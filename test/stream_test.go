package test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/netlab"
	"github.com/shoal-dev/shoal/internal/poll"
)

// gate is an HTTP server on a lab machine that functions reach through their
// NAT: GET /<token> waits until the test opens that token. A streaming
// function writes its first chunk, then waits at the gate: when the caller
// holds the first chunk while the function is still waiting there, the chunk
// came before the function returned — without timing anything.
type gate struct {
	url string

	mu      sync.Mutex
	opened  map[string]chan struct{}
	waiting map[string]int
	seq     int
}

func newGate(t *testing.T, lab *netlab.Lab) *gate {
	t.Helper()
	m := lab.Machine()
	ln, err := m.Listen("tcp", m.IP+":8080")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{url: "http://" + m.IP + ":8080", opened: map[string]chan struct{}{}, waiting: map[string]int{}}
	srv := &http.Server{Handler: g}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return g
}

func (g *gate) ch(token string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.opened[token]
	if !ok {
		c = make(chan struct{})
		g.opened[token] = c
	}
	return c
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.URL.Path, "/")
	c := g.ch(token)
	g.mu.Lock()
	g.waiting[token]++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.waiting[token]--
		g.mu.Unlock()
	}()
	select {
	case <-c:
		_, _ = io.WriteString(w, "open")
	case <-r.Context().Done():
	}
}

// token returns a fresh, closed gate's URL and token.
func (g *gate) token() (url, token string) {
	g.mu.Lock()
	g.seq++
	token = fmt.Sprintf("t%d", g.seq)
	g.mu.Unlock()
	g.ch(token)
	return g.url + "/" + token, token
}

func (g *gate) open(token string) { close(g.ch(token)) }

// waitAt waits until a function is waiting at token.
func (g *gate) waitAt(t *testing.T, token string) {
	t.Helper()
	poll.Until(t, 30*time.Second, func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.waiting[token] == 0 {
			return fmt.Errorf("no function is waiting at the gate %s: it has returned, or never got there", token)
		}
		return nil
	})
}

// nextEvent waits for the next event of a response stream.
func nextEvent(t *testing.T, events <-chan types.InvokeWithResponseStreamResponseEvent) types.InvokeWithResponseStreamResponseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(90 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

// rest reads a stream to its end: the chunks' bytes and the InvokeComplete.
func rest(t *testing.T, out *lambda.InvokeWithResponseStreamOutput) (body []byte, chunks int, complete *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	for ev := range out.GetStream().Events() {
		switch v := ev.(type) {
		case *types.InvokeWithResponseStreamResponseEventMemberPayloadChunk:
			body = append(body, v.Value.Payload...)
			chunks++
		case *types.InvokeWithResponseStreamResponseEventMemberInvokeComplete:
			c := v.Value
			complete = &c
		}
	}
	if err := out.GetStream().Err(); err != nil {
		t.Fatal(err)
	}
	return body, chunks, complete
}

// streamFirstChunkFirst invokes a streaming function through the SDK and checks
// that its first chunk arrives while it is still running.
func streamFirstChunkFirst(t *testing.T, s *shoal, g *gate, fn, qualifier string, payload func(gateURL string) string) {
	t.Helper()
	gateURL, token := g.token()
	in := &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String(fn), Payload: []byte(payload(gateURL))}
	if qualifier != "" {
		in.Qualifier = aws.String(qualifier)
	}
	out, err := s.client.InvokeWithResponseStream(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	defer out.GetStream().Close()
	first, ok := nextEvent(t, out.GetStream().Events()).(*types.InvokeWithResponseStreamResponseEventMemberPayloadChunk)
	if !ok || string(first.Value.Payload) != "first chunk;" {
		t.Fatalf("first event %#v", first)
	}
	g.waitAt(t, token) // the function has not returned: the first chunk came first
	g.open(token)
	body, _, complete := rest(t, out)
	if string(body) != "second chunk" || complete == nil || complete.ErrorCode != nil {
		t.Fatalf("then %q, complete %+v", body, complete)
	}
	if out.StatusCode != 200 || aws.ToString(out.ResponseStreamContentType) == "" || aws.ToString(out.ExecutedVersion) == "" {
		t.Errorf("output %+v", out)
	}
}

// urlFirstChunkFirst does the same through a function URL in RESPONSE_STREAM mode.
func urlFirstChunkFirst(t *testing.T, g *gate, u string, wantStatus int, wantHeader string) {
	t.Helper()
	gateURL, token := g.token()
	resp, err := http.Get(u + "?op=stream&gate=" + gateURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantStatus || resp.Header.Get(wantHeader) != "yes" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("status %d, headers %v", resp.StatusCode, resp.Header)
	}
	first := make([]byte, len("first chunk;"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first chunk;" {
		t.Fatalf("first bytes %q: %v", first, err)
	}
	g.waitAt(t, token)
	g.open(token)
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "second chunk" {
		t.Fatalf("then %q: %v", b, err)
	}
}

// nodeStreamer is a streamified Node.js handler: through the SDK it streams
// text, through a function URL an HTTP response (status 202); either way
// "first chunk;", a wait at the gate, "second chunk".
const nodeStreamer = `exports.handler = awslambda.streamifyResponse(async (event, responseStream) => {
  const url = event.requestContext ? (event.queryStringParameters || {}).gate : event.gate;
  if (event.requestContext) {
    responseStream = awslambda.HttpResponseStream.from(responseStream,
      { statusCode: 202, headers: { 'content-type': 'text/plain', 'x-node': 'yes' } });
  } else {
    responseStream.setContentType('text/plain');
  }
  responseStream.write('first chunk;');
  if (url) await fetch(url);
  responseStream.write('second chunk');
  responseStream.end();
});`

// TestResponseStreaming: responses reach the caller chunk by chunk through the
// SDK and through function URLs, on every compute type; a 10 MB streamed
// response arrives whole; a buffered Invoke of a streaming function still gets
// the whole answer, within the buffered limit.
func TestResponseStreaming(t *testing.T) {
	lab := netlab.New(t)
	g := newGate(t, lab)
	s := managedShoal(t)
	createGoFn(t, s, "streamer", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(60) })
	goPayload := func(gateURL string) string { return `{"op":"stream","value":"` + gateURL + `"}` }

	t.Run("on-demand", func(t *testing.T) { streamFirstChunkFirst(t, s, g, "streamer", "", goPayload) })

	t.Run("provisioned concurrency", func(t *testing.T) {
		v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("streamer")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.client.PutProvisionedConcurrencyConfig(ctx(t), &lambda.PutProvisionedConcurrencyConfigInput{
			FunctionName: aws.String("streamer"), Qualifier: v.Version, ProvisionedConcurrentExecutions: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, time.Minute, func() error {
			got, err := s.client.GetProvisionedConcurrencyConfig(ctx(t), &lambda.GetProvisionedConcurrencyConfigInput{
				FunctionName: aws.String("streamer"), Qualifier: v.Version})
			if err != nil {
				return err
			}
			if got.Status != types.ProvisionedConcurrencyStatusEnumReady {
				return errUnexpected("status", got.Status)
			}
			return nil
		})
		streamFirstChunkFirst(t, s, g, "streamer", aws.ToString(v.Version), goPayload)
	})

	t.Run("managed instances", func(t *testing.T) {
		cp := createCapacityProvider(t, s, "cp-stream")
		createManagedFn(t, s, "mstreamer", cp, 4)
		publishBounded(t, s, "mstreamer", 1)
		streamFirstChunkFirst(t, s, g, "mstreamer", "", goPayload)
		u := createURL(t, s, "mstreamer", "", types.FunctionUrlAuthTypeNone, types.InvokeModeResponseStream, nil)
		allowPublic(t, s, "mstreamer", "")
		urlFirstChunkFirst(t, g, u, 201, "X-Streamed")
		// 10 MB through the wire, whole.
		out, err := s.client.InvokeWithResponseStream(ctx(t), &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("mstreamer"),
			Payload: []byte(`{"op":"streambig","mb":10}`)})
		if err != nil {
			t.Fatal(err)
		}
		body, chunks, complete := rest(t, out)
		checkBig(t, body, chunks, complete)
	})

	t.Run("10 MB streamed", func(t *testing.T) {
		out, err := s.client.InvokeWithResponseStream(ctx(t), &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("streamer"),
			Payload: []byte(`{"op":"streambig","mb":10}`)})
		if err != nil {
			t.Fatal(err)
		}
		body, chunks, complete := rest(t, out)
		checkBig(t, body, chunks, complete)
		// Buffered, the same answer is past Lambda's 6 MB limit.
		inv, err := s.client.Invoke(ctx(t), &lambda.InvokeInput{FunctionName: aws.String("streamer"), Payload: []byte(`{"op":"streambig","mb":10}`)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(inv.FunctionError) != "Unhandled" || !strings.Contains(string(inv.Payload), "Function.ResponseSizeTooLarge") {
			t.Errorf("buffered 10 MB: %v %s", inv.FunctionError, inv.Payload)
		}
	})

	t.Run("buffered invoke of a streaming function", func(t *testing.T) {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("streamer"), Payload: []byte(`{"op":"stream","ms":1}`)})
		if out.FunctionError != nil || string(out.Payload) != "first chunk;second chunk" {
			t.Errorf("%v %q", out.FunctionError, out.Payload)
		}
	})

	t.Run("a failure after the first chunk", func(t *testing.T) {
		out, err := s.client.InvokeWithResponseStream(ctx(t), &lambda.InvokeWithResponseStreamInput{FunctionName: aws.String("streamer"),
			Payload: []byte(`{"op":"streamfail"}`), LogType: types.LogTypeTail})
		if err != nil {
			t.Fatal(err)
		}
		body, _, complete := rest(t, out)
		if string(body) != "partial;" || complete == nil || aws.ToString(complete.ErrorCode) == "" ||
			!strings.Contains(aws.ToString(complete.ErrorDetails), "the stream broke") || aws.ToString(complete.LogResult) == "" {
			t.Errorf("%q, complete %+v", body, complete)
		}
	})

	t.Run("a function URL", func(t *testing.T) {
		u := createURL(t, s, "streamer", "", types.FunctionUrlAuthTypeNone, types.InvokeModeResponseStream, nil)
		allowPublic(t, s, "streamer", "")
		urlFirstChunkFirst(t, g, u, 201, "X-Streamed")
		resp, err := http.Get(u + "?op=big&mb=10")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(b) != 10<<20 || !bytes.Equal(b[:64], []byte(strings.Repeat("0123456789abcdef", 4))) {
			t.Errorf("10 MB through the URL: %d, %d bytes, %v", resp.StatusCode, len(b), err)
		}
	})

	t.Run("node streamifyResponse", func(t *testing.T) {
		createSourceFn(t, s, "nodestream", types.RuntimeNodejs20x, "index.handler", map[string]string{"index.js": nodeStreamer})
		streamFirstChunkFirst(t, s, g, "nodestream", "", func(gateURL string) string { return `{"gate":"` + gateURL + `"}` })
		u := createURL(t, s, "nodestream", "", types.FunctionUrlAuthTypeNone, types.InvokeModeResponseStream, nil)
		allowPublic(t, s, "nodestream", "")
		urlFirstChunkFirst(t, g, u, 202, "X-Node")
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("nodestream"), Payload: []byte(`{}`)})
		if string(out.Payload) != "first chunk;second chunk" {
			t.Errorf("buffered: %q", out.Payload)
		}
	})
}

// checkBig checks a 10 MB streamed answer of streambig.
func checkBig(t *testing.T, body []byte, chunks int, complete *types.InvokeWithResponseStreamCompleteEvent) {
	t.Helper()
	want := bytes.Repeat([]byte("0123456789abcdef"), (10<<20)/16)
	if !bytes.Equal(body, want) || complete == nil || complete.ErrorCode != nil {
		t.Fatalf("%d bytes (want %d), complete %+v", len(body), len(want), complete)
	}
	if chunks < 2 {
		t.Errorf("10 MB came in %d chunk", chunks)
	}
}
