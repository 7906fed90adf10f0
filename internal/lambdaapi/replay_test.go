package lambdaapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Replaying AWS's recorded scenarios against shoal.
//
// test_lambda_api.snapshot.json (testdata/aws-recordings, from LocalStack's snapshot
// tests) holds, per scenario, the answers AWS gave to a sequence of calls, with
// volatile values replaced by placeholders. A recordedScenario sends the same calls
// to shoal through the AWS SDK for Go v2 (raw HTTP only where the call cannot be
// made with it), records shoal's answer to each step in the shape botocore gives it
// (the shape of the recordings), and compares the two field by field. Placeholders
// are compared by equality pattern: the first value a numbered placeholder stands
// for binds it, the same placeholder must then stand for the same value everywhere
// in the scenario, and two placeholders of one kind must stand for different
// values. So "<uuid:3>" against "<uuid:4>" requires two different RevisionIds, and
// "<code-sha256:1>" twice the same CodeSha256.

// recordingsAccount is the account id the recordings show; the replay server uses it.
const recordingsAccount = "111111111111"

// recordedScenario replays one recorded test.
type recordedScenario struct {
	id  string // "Class::test[param]", as in the snapshot file after "::"
	run func(r *replay)
	// skip names recorded steps that are not replayed, with the reason.
	skip map[string]string
	// ignore names fields left out of the comparison in every step, with the reason.
	ignore map[string]string
}

// replayServer is the one shoal API server the scenarios of a test share.
type replayServer struct {
	e   *env
	seq int
}

func newReplayServer(t *testing.T, mutate ...func(*Config)) *replayServer {
	t.Helper()
	return &replayServer{e: newEnvWithAccount(t, recordingsAccount, mutate...)}
}

// runAll runs each scenario as a subtest, in order, against the shared server.
func (s *replayServer) runAll(t *testing.T, scenarios []recordedScenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.id, func(t *testing.T) {
			s.seq++
			r := newReplay(t, s.e, fmt.Sprintf("s%03d", s.seq))
			sc.run(r)
			r.compare(sc)
		})
	}
}

// replay is one scenario's run: its client and the steps recorded so far.
type replay struct {
	t      *testing.T
	e      *env
	ctx    context.Context
	client *lambda.Client
	cap    *capture
	prefix string
	steps  map[string]any
	order  []string
	// bind pre-binds placeholders the scenario defines itself (e.g. "<fn-name>").
	bind map[string]string
}

func newReplay(t *testing.T, e *env, prefix string) *replay {
	c := &capture{}
	client := lambda.New(lambda.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(e.url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       c,
	})
	return &replay{t: t, e: e, ctx: context.Background(), client: client, cap: c, prefix: prefix,
		steps: map[string]any{}, bind: map[string]string{}}
}

// name returns a function name unique to this scenario.
func (r *replay) name(base string) string { return r.prefix + "-" + base }

// arn is a function ARN in the replay server's account and region.
func (r *replay) arn(name string) string {
	return "arn:aws:lambda:us-east-1:" + recordingsAccount + ":function:" + name
}

// capture is the SDK's HTTP client: it keeps the last raw response.
type capture struct {
	mu     sync.Mutex
	method string
	path   string
	status int
	header http.Header
	body   []byte
}

func (c *capture) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.method, c.path, c.status, c.header, c.body = req.Method, req.URL.EscapedPath(), resp.StatusCode, resp.Header, b
	c.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// do makes one SDK call and returns shoal's answer in botocore's shape; a step name
// records it.
func (r *replay) do(step string, call func(ctx context.Context, c *lambda.Client) error) map[string]any {
	r.t.Helper()
	r.cap.mu.Lock()
	r.cap.status = 0
	r.cap.mu.Unlock()
	err := call(r.ctx, r.client)
	r.cap.mu.Lock()
	method, path, status, header, body := r.cap.method, r.cap.path, r.cap.status, r.cap.header, r.cap.body
	r.cap.mu.Unlock()
	if status == 0 {
		r.t.Fatalf("step %s: no request sent: %v", step, err)
	}
	if (status >= 300) != (err != nil) {
		r.t.Errorf("step %s: status %d but SDK error %v", step, status, err)
	}
	out := botoShape(method, path, status, header, body)
	if step != "" {
		r.record(step, out)
	}
	return out
}

// raw sends a request without the SDK (for calls the SDK cannot make) and returns
// the answer in botocore's shape; a step name records it.
func (r *replay) raw(step, method, path string, body io.Reader) map[string]any {
	r.t.Helper()
	req, err := http.NewRequest(method, r.e.url+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	out := botoShape(method, req.URL.EscapedPath(), resp.StatusCode, resp.Header, b)
	if step != "" {
		r.record(step, out)
	}
	return out
}

// record keeps a step's value (a response, or what the scenario computed).
func (r *replay) record(step string, v any) {
	r.t.Helper()
	if _, dup := r.steps[step]; dup {
		r.t.Fatalf("step %s recorded twice", step)
	}
	r.steps[step] = v
	r.order = append(r.order, step)
}

// modelled are the errors in Lambda's service model: botocore copies their body
// members to the top level of the parsed response. Others (ValidationException,
// AccessDeniedException, …) come from the front end and keep only Error.
var modelled = map[string]bool{}

func init() {
	for _, e := range []error{
		&types.CodeSigningConfigNotFoundException{}, &types.CodeStorageExceededException{},
		&types.InvalidParameterValueException{}, &types.InvalidRequestContentException{},
		&types.InvalidRuntimeException{}, &types.InvalidZipFileException{},
		&types.PreconditionFailedException{}, &types.ProvisionedConcurrencyConfigNotFoundException{},
		&types.RequestTooLargeException{}, &types.ResourceConflictException{},
		&types.ResourceInUseException{}, &types.ResourceNotFoundException{},
		&types.ResourceNotReadyException{}, &types.ServiceException{},
		&types.TooManyRequestsException{}, &types.UnsupportedMediaTypeException{},
		&types.RecursiveInvocationException{}, &types.SnapStartException{},
		&types.NoPublishedVersionException{}, &types.ServiceQuotaExceededException{},
	} {
		modelled[e.(interface{ ErrorCode() string }).ErrorCode()] = true
	}
}

var deleteFunctionPath = regexp.MustCompile(`^/2015-03-31/functions/[^/]+$`)

// botoShape is a raw response as botocore parses it: the JSON members, members bound
// to the status code, the error as Error{Code, Message}, and ResponseMetadata.
func botoShape(method, path string, status int, header http.Header, body []byte) map[string]any {
	var m map[string]any
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			m = map[string]any{"<unparsed body>": string(body)}
		}
	}
	if m == nil {
		m = map[string]any{}
	}
	out := map[string]any{}
	if status >= 300 {
		code, _, _ := strings.Cut(header.Get("X-Amzn-Errortype"), ":")
		var msg any // botocore's None when the body has no message
		if v, ok := m["message"]; ok {
			msg = v
		} else if v, ok := m["Message"]; ok {
			msg = v
		}
		out["Error"] = map[string]any{"Code": code, "Message": msg}
		if modelled[code] {
			for k, v := range m {
				out[k] = v
			}
		}
	} else {
		out = m
		if method == http.MethodDelete && deleteFunctionPath.MatchString(path) {
			out["StatusCode"] = float64(status)
		}
	}
	out["ResponseMetadata"] = map[string]any{"HTTPHeaders": map[string]any{}, "HTTPStatusCode": float64(status)}
	return out
}

// compare checks every recorded step against shoal's.
func (r *replay) compare(sc recordedScenario) {
	t := r.t
	t.Helper()
	rec := recordedContent(t, sc.id)
	o := newOracle(r.bind)
	for f, why := range sc.ignore {
		if why == "" {
			t.Errorf("field %s ignored without a reason", f)
		}
		o.ignore[f] = true
	}
	var steps []string
	for s := range rec {
		steps = append(steps, s)
	}
	// Bind in the order the steps were made, as the recordings numbered them.
	sort.SliceStable(steps, func(i, j int) bool { return r.index(steps[i]) < r.index(steps[j]) })
	for _, step := range steps {
		if why, ok := sc.skip[step]; ok {
			if why == "" {
				t.Errorf("step %s skipped without a reason", step)
			}
			continue
		}
		got, ok := r.steps[step]
		if !ok {
			t.Errorf("step %s: recorded, not replayed", step)
			continue
		}
		for _, d := range o.match(step, rec[step], got) {
			t.Error(d)
		}
	}
	for _, step := range r.order {
		if _, ok := rec[step]; !ok {
			t.Errorf("step %s: replayed, not recorded", step)
		}
	}
	for step := range sc.skip {
		if _, ok := rec[step]; !ok {
			t.Errorf("skipped step %s is not recorded", step)
		}
	}
}

func (r *replay) index(step string) int {
	for i, s := range r.order {
		if s == step {
			return i
		}
	}
	return len(r.order)
}

var (
	allRecordingsOnce sync.Once
	allRecordings     map[string]map[string]any
	allRecordingsErr  error
)

// recordedScenarios returns every scenario of test_lambda_api.snapshot.json by its
// id after the file name ("Class::test[param]").
func recordedScenarios(t testing.TB) map[string]map[string]any {
	t.Helper()
	allRecordingsOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join(recordingsDir, "test_lambda_api.snapshot.json"))
		if err != nil {
			allRecordingsErr = err
			return
		}
		var all map[string]struct {
			Content map[string]any `json:"recorded-content"`
		}
		if allRecordingsErr = json.Unmarshal(b, &all); allRecordingsErr != nil {
			return
		}
		allRecordings = make(map[string]map[string]any)
		for id, s := range all {
			allRecordings[id[strings.Index(id, "::")+2:]] = s.Content
		}
	})
	if allRecordingsErr != nil {
		t.Fatalf("recordings: %v", allRecordingsErr)
	}
	return allRecordings
}

func recordedContent(t testing.TB, id string) map[string]any {
	t.Helper()
	c, ok := recordedScenarios(t)[id]
	if !ok {
		t.Fatalf("no recorded scenario %s", id)
	}
	return c
}

// oracle compares recorded values with shoal's, binding placeholders.
type oracle struct {
	bound  map[string]string            // placeholder → value
	taken  map[string]map[string]string // kind → value → placeholder
	ignore map[string]bool              // field names not compared
}

func newOracle(pre map[string]string) *oracle {
	o := &oracle{bound: map[string]string{}, taken: map[string]map[string]string{}, ignore: map[string]bool{}}
	o.set("<partition>", "aws")
	o.set("<region>", "us-east-1")
	for p, v := range pre {
		o.set(p, v)
	}
	return o
}

func (o *oracle) set(p, v string) {
	o.bound[p] = v
	k := placeholderKind(p)
	if o.taken[k] == nil {
		o.taken[k] = map[string]string{}
	}
	o.taken[k][v] = p
}

var (
	placeholderRE = regexp.MustCompile(`<[^<>\s"]+>`)
	lambdaTimeRE  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$`)
	numberedRE    = regexp.MustCompile(`:\d+>$`)
)

// placeholderKind is a placeholder without its number: "<uuid:3>" → "<uuid>".
func placeholderKind(p string) string { return numberedRE.ReplaceAllString(p, ">") }

// wildcard placeholders stand for any value and bind nothing (LocalStack replaces
// them without reference).
var wildcard = map[string]bool{"<location>": true, "<layer-location>": true}

// kindPattern is what an unbound placeholder of a kind may match.
func kindPattern(kind string) string {
	switch kind {
	case "<uuid>":
		return `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	case "<code-sha256>":
		return `[A-Za-z0-9+/]{43}=`
	}
	return `.+?`
}

// match compares want (recorded) with got (shoal) and returns the differences.
func (o *oracle) match(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: AWS has an object, shoal %s", path, show(got))}
		}
		var diffs []string
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			if o.ignore[k] {
				continue
			}
			p := path + "." + k
			wv, inW := w[k]
			gv, inG := g[k]
			switch {
			case !inG:
				diffs = append(diffs, fmt.Sprintf("%s: AWS has %s, shoal has nothing", p, show(wv)))
			case !inW:
				diffs = append(diffs, fmt.Sprintf("%s: shoal has %s, AWS has nothing", p, show(gv)))
			case k == "ResponseMetadata":
				diffs = append(diffs, o.match(p+".HTTPStatusCode", wv.(map[string]any)["HTTPStatusCode"], gv.(map[string]any)["HTTPStatusCode"])...)
			default:
				diffs = append(diffs, o.match(p, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: AWS has %s, shoal %s", path, show(want), show(got))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, o.match(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	case string:
		return o.matchString(path, w, got)
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) || (want == nil) != (got == nil) {
			return []string{fmt.Sprintf("%s: AWS %s, shoal %s", path, show(want), show(got))}
		}
		return nil
	}
}

func (o *oracle) matchString(path, w string, got any) []string {
	bad := func() []string { return []string{fmt.Sprintf("%s: AWS %s, shoal %s", path, show(w), show(got))} }
	switch {
	case w == "date":
		if s, ok := got.(string); ok && lambdaTimeRE.MatchString(s) {
			return nil
		}
		return bad()
	case w == "datetime": // a timestamp member sent as epoch seconds
		if _, ok := got.(float64); ok {
			return nil
		}
		return bad()
	case w == "<code-size>":
		if _, ok := got.(float64); ok {
			return nil
		}
		return bad()
	}
	g, ok := got.(string)
	if !ok {
		return bad()
	}
	if !placeholderRE.MatchString(w) {
		if w != g {
			return bad()
		}
		return nil
	}
	// Build a pattern: literal text quoted, bound placeholders as their values,
	// unbound ones as groups.
	var pat strings.Builder
	var groups []string
	last := 0
	for _, loc := range placeholderRE.FindAllStringIndex(w, -1) {
		pat.WriteString(regexp.QuoteMeta(w[last:loc[0]]))
		p := w[loc[0]:loc[1]]
		switch v, isBound := o.bound[p]; {
		case wildcard[p]:
			pat.WriteString(`.*?`)
		case isBound:
			pat.WriteString(regexp.QuoteMeta(v))
		default:
			pat.WriteString("(" + kindPattern(placeholderKind(p)) + ")")
			groups = append(groups, p)
		}
		last = loc[1]
	}
	pat.WriteString(regexp.QuoteMeta(w[last:]))
	m := regexp.MustCompile("^(?s:" + pat.String() + ")$").FindStringSubmatch(g)
	if m == nil {
		return bad()
	}
	var diffs []string
	for i, p := range groups {
		v := m[i+1]
		if prev, ok := o.bound[p]; ok { // the same placeholder twice in one string
			if prev != v {
				diffs = append(diffs, fmt.Sprintf("%s: %s stands for %q and %q", path, p, prev, v))
			}
			continue
		}
		if other, ok := o.taken[placeholderKind(p)][v]; ok {
			diffs = append(diffs, fmt.Sprintf("%s: AWS has %s where it had %s, shoal has the same value %q for both", path, p, other, v))
			continue
		}
		o.set(p, v)
	}
	return diffs
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func show(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	b := bytes.TrimSpace(buf.Bytes())
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
