package lambdaapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

type createFunctionRequest struct {
	configRequest
	FunctionName  *string           `json:"FunctionName"`
	Code          *codeRequest      `json:"Code"`
	Publish       bool              `json:"Publish"`
	PackageType   *string           `json:"PackageType"`
	Tags          map[string]string `json:"Tags"`
	Architectures []string          `json:"Architectures"`
	PublishTo     *string           `json:"PublishTo"`
	// Accepted and ignored, as shoal verifies no code signatures.
	CodeSigningConfigArn *string `json:"CodeSigningConfigArn"`
}

// parseCreateFunction decodes and validates a CreateFunction body: first every
// constraint of the request's shape (one ValidationException listing each
// failure), then the service's rules.
func (a *api) parseCreateFunction(body []byte) (*createFunctionRequest, error) {
	var req createFunctionRequest
	if err := unmarshalBody(body, &req); err != nil {
		return nil, err
	}
	var v violations
	var ref functionRef
	if req.FunctionName == nil {
		v.addRaw("Value null at 'functionName' failed to satisfy constraint: Member must not be null")
	} else {
		ref = matchName(*req.FunctionName, createName, &v)
	}
	if req.Role == nil {
		v.addRaw("Value null at 'role' failed to satisfy constraint: Member must not be null")
	}
	if req.Code == nil {
		v.addRaw("Value null at 'code' failed to satisfy constraint: Member must not be null")
	}
	if req.PackageType != nil && *req.PackageType != "Zip" && *req.PackageType != "Image" {
		v.add(*req.PackageType, "packageType", "Member must satisfy enum value set: [Image, Zip]")
	}
	checkArchitectures(req.Architectures, &v)
	checkPublishTo(req.PublishTo, &v)
	req.syntax(&v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := a.checkOwner(ref); err != nil {
		return nil, err
	}
	if len(ref.Name) > 64 {
		return nil, awserr.InvalidParameter("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64", ref.Name)
	}
	if ref.Qualifier != "" {
		return nil, awserr.InvalidParameter("Function name %s must not contain a qualifier.", *req.FunctionName)
	}
	req.FunctionName = &ref.Name
	if req.PackageType != nil && *req.PackageType == "Image" {
		return nil, awserr.InvalidParameter("PackageType Image is not supported by shoal; use Zip.")
	}
	if err := req.semantics(); err != nil {
		return nil, err
	}
	if req.Runtime == nil {
		return nil, awserr.InvalidParameter("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
	}
	if req.Handler == nil && !isProvided(*req.Runtime) {
		return nil, awserr.InvalidParameter("Runtime and Handler are mandatory parameters for functions created with deployment packages.")
	}
	if len(req.Tags) > 50 {
		return nil, awserr.InvalidParameter("Number of tags exceeds resource tag limit.")
	}
	if err := a.validateZip(req.Code); err != nil {
		return nil, err
	}
	return &req, nil
}

// checkPublishTo records a PublishTo outside its enum.
func checkPublishTo(p *string, v *violations) {
	if p != nil && *p != registry.PublishToLatestPublished {
		v.add(*p, "publishTo", "Member must satisfy enum value set: [LATEST_PUBLISHED]")
	}
}

// validatePublishTo checks the PublishTo enum.
func validatePublishTo(p *string) error {
	var v violations
	checkPublishTo(p, &v)
	if err := v.err(); err != nil {
		return err
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func isProvided(runtime string) bool {
	return runtime == "provided" || runtime == "provided.al2" || runtime == "provided.al2023"
}

func (a *api) createFunction(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, a.cfg.MaxRequestBytes, func() error {
		return requestEntityTooLarge("Request must be smaller than %d bytes for the CreateFunction operation", a.cfg.MaxRequestBytes)
	})
	if err != nil {
		return err
	}
	req, err := a.parseCreateFunction(body)
	if err != nil {
		return err
	}
	if err := a.checkDeadLetter(*req.FunctionName, req.DeadLetterConfig); err != nil {
		return err
	}
	cfg := registry.Version{FunctionName: *req.FunctionName, Architectures: req.Architectures}
	req.configRequest.apply(&cfg)
	if err := a.finishCompute(&cfg, nil, &req.configRequest); err != nil {
		return err
	}
	if err := finishSnapStart(&cfg); err != nil {
		return err
	}
	if err := finishLogging(&cfg, req.LoggingConfig); err != nil {
		return err
	}
	latest, published, err := a.reg.CreateFunction(r.Context(), registry.CreateFunctionInput{
		Config: cfg, ZipFile: req.Code.ZipFile, Tags: req.Tags, Publish: req.Publish, PublishTo: deref(req.PublishTo),
	})
	if err != nil {
		return err
	}
	out := *latest
	if published != nil {
		out = *published
		out.FunctionArn = latest.FunctionArn
	}
	return writeJSON(w, http.StatusCreated, pending(&out))
}

// pending shows a configuration as Lambda's answers show one it is still creating:
// State Pending, no LastUpdateStatus, and the RevisionId of that state, which the
// function leaves when it becomes Active (here, before the answer is sent; see
// docs/decisions/function-state-in-responses.md).
func pending(v *registry.Version) *registry.Version {
	out := *v
	out.State, out.StateReason, out.StateReasonCode = "Pending", "The function is being created.", "Creating"
	out.LastUpdateStatus, out.LastUpdateStatusReason, out.LastUpdateStatusReasonCode = "", "", ""
	out.RevisionId = registry.NewRevisionID()
	return &out
}

// updating shows a configuration as Lambda's update answers show it: LastUpdateStatus
// InProgress, and the RevisionId of that state, which the function leaves when the
// update is done (here, before the answer is sent).
func updating(v *registry.Version) *registry.Version {
	out := *v
	out.LastUpdateStatus = "InProgress"
	out.LastUpdateStatusReason = "The function is being created."
	out.LastUpdateStatusReasonCode = "Creating"
	out.RevisionId = registry.NewRevisionID()
	return &out
}

// publishing shows a version an update published as Lambda's answer shows it: still
// being created (State Pending), with the RevisionId it keeps.
func publishing(v *registry.Version) *registry.Version {
	out := *v
	out.State, out.StateReason, out.StateReasonCode = "Pending", "The function is being created.", "Creating"
	out.LastUpdateStatus, out.LastUpdateStatusReason, out.LastUpdateStatusReasonCode = "", "", ""
	return &out
}

// listed strips the fields Lambda leaves out of list results; qualify makes $LATEST's
// ARN qualified as ListVersionsByFunction and ListFunctions(ALL) show it.
func listed(v *registry.Version, qualify bool) *registry.Version {
	out := *v
	out.State, out.StateReason, out.StateReasonCode = "", "", ""
	out.LastUpdateStatus, out.LastUpdateStatusReason, out.LastUpdateStatusReasonCode = "", "", ""
	out.RuntimeVersionConfig = nil
	if qualify && out.Version == registry.Latest {
		out.FunctionArn += ":" + registry.Latest
	}
	return &out
}

type concurrencyBody struct {
	ReservedConcurrentExecutions *int `json:"ReservedConcurrentExecutions,omitempty"`
}

type functionCodeLocation struct {
	RepositoryType string `json:"RepositoryType"`
	Location       string `json:"Location"`
}

type getFunctionResponse struct {
	Configuration *registry.Version    `json:"Configuration"`
	Code          functionCodeLocation `json:"Code"`
	Tags          map[string]string    `json:"Tags,omitempty"`
	Concurrency   *concurrencyBody     `json:"Concurrency,omitempty"`
}

func (a *api) getFunction(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	fn, err := a.reg.GetFunction(r.Context(), ref.Name)
	if err != nil {
		return a.notFoundAs(err, ref)
	}
	v, err := a.reg.ResolveVersion(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return err
	}
	resp := getFunctionResponse{
		Configuration: a.read(v, ref),
		Code:          functionCodeLocation{RepositoryType: "S3", Location: a.codeURL(r, v.CodeSha256)},
		Tags:          fn.Tags,
	}
	if fn.Reserved != nil {
		resp.Concurrency = &concurrencyBody{ReservedConcurrentExecutions: fn.Reserved}
	}
	return writeJSON(w, http.StatusOK, &resp)
}

// notFoundAs rewrites a missing-function error to name the qualifier, as Lambda's
// messages do for qualified requests.
func (a *api) notFoundAs(err error, ref functionRef) error {
	if awserr.Is(err, awserr.CodeResourceNotFound) && ref.Qualifier != "" {
		return awserr.NotFound("Function not found: %s", a.reg.FunctionARN(ref.Name, ref.Qualifier))
	}
	return err
}

func (a *api) getFunctionConfiguration(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	v, err := a.reg.ResolveVersion(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.read(v, ref))
}

// read is a configuration as GetFunction and GetFunctionConfiguration show it: with
// the ARN the caller named it by (":$LATEST", an alias, a version), and, while an
// update of $LATEST is under way, LastUpdateStatus InProgress.
func (a *api) read(v *registry.Version, ref functionRef) *registry.Version {
	out := *a.shown(v)
	if ref.Qualifier != "" {
		out.FunctionArn = a.reg.FunctionARN(v.FunctionName, ref.Qualifier)
	}
	if v.Version == registry.Latest && a.reg.Updating(v.FunctionName) {
		out.LastUpdateStatus = "InProgress"
		out.LastUpdateStatusReason = "The function is being created."
		out.LastUpdateStatusReasonCode = "Creating"
	}
	return &out
}

type listFunctionsResponse struct {
	Functions  []*registry.Version `json:"Functions"`
	NextMarker string              `json:"NextMarker,omitempty"`
}

func (a *api) listFunctions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	all := false
	if fv, ok := q["FunctionVersion"]; ok {
		if len(fv) == 0 || fv[0] != "ALL" {
			return validationError(first(fv), "functionVersion", "Member must satisfy enum value set: [ALL]")
		}
		all = true
	}
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 10000)
	if err != nil {
		return err
	}
	vs := a.reg.ListFunctions(r.Context(), all)
	page, next, err := paginate(vs, functionVersionOrder, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listFunctionsResponse{Functions: make([]*registry.Version, 0, len(page)), NextMarker: next}
	for _, v := range page {
		out.Functions = append(out.Functions, listed(v, all))
	}
	return writeJSON(w, http.StatusOK, &out)
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// parseMaxItems reads MaxItems (1..max, default def).
func parseMaxItems(s string, def, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, awserr.InvalidParameter("Invalid MaxItems: %s", s)
	}
	if n < 1 {
		return 0, validationError(s, "maxItems", "Member must have value greater than or equal to 1")
	}
	if n > max {
		return 0, validationError(s, "maxItems", "Member must have value less than or equal to "+strconv.Itoa(max))
	}
	return n, nil
}

// versionOrder is a version's pagination key, which sorts as lists do: $LATEST,
// $LATEST.PUBLISHED, then the numbered versions in ascending order.
func versionOrder(v string) string {
	switch v {
	case registry.Latest:
		return "0"
	case registry.LatestPublished:
		return "1"
	}
	if len(v) < 20 {
		return "2" + strings.Repeat("0", 20-len(v)) + v
	}
	return "2" + v
}

// functionVersionOrder is the pagination key of a version in a list ordered by
// function name, then version.
func functionVersionOrder(v *registry.Version) string {
	return v.FunctionName + "\x00" + versionOrder(v.Version)
}

// paginate returns the page of items starting at marker (an opaque key of the first
// item of the page) and the marker of the next page. Keys must sort as the items
// do, so that a page whose first item was deleted continues from the next one.
func paginate[T any](items []T, key func(T) string, marker string, maxItems int) ([]T, string, error) {
	start := 0
	if marker != "" {
		b, err := base64.RawURLEncoding.DecodeString(marker)
		if err != nil {
			return nil, "", awserr.InvalidParameter("Invalid Marker: %s", marker)
		}
		k := string(b)
		start = -1
		for i, it := range items {
			if key(it) == k {
				start = i
				break
			}
		}
		if start < 0 { // that item is gone: continue from the next key in order
			start = len(items)
			for i, it := range items {
				if key(it) > k {
					start = i
					break
				}
			}
		}
	}
	end := min(start+maxItems, len(items))
	next := ""
	if end < len(items) {
		next = base64.RawURLEncoding.EncodeToString([]byte(key(items[end])))
	}
	return items[start:end], next, nil
}

type updateCodeRequest struct {
	codeRequest
	Publish       bool     `json:"Publish"`
	RevisionId    string   `json:"RevisionId"`
	DryRun        bool     `json:"DryRun"`
	Architectures []string `json:"Architectures"`
	PublishTo     *string  `json:"PublishTo"`
}

func (a *api) updateFunctionCode(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	// The update is under way from here: receiving the package is part of it.
	end, err := a.reg.BeginUpdate(ref.Name)
	if err != nil {
		return err
	}
	defer end()
	body, err := readBody(r, a.cfg.MaxRequestBytes, func() error {
		return requestEntityTooLarge("Request must be smaller than %d bytes for the UpdateFunctionCode operation", a.cfg.MaxRequestBytes)
	})
	if err != nil {
		return err
	}
	var req updateCodeRequest
	if err := unmarshalBody(body, &req); err != nil {
		return err
	}
	var v violations
	checkArchitectures(req.Architectures, &v)
	checkPublishTo(req.PublishTo, &v)
	if err := v.err(); err != nil {
		return err
	}
	if err := a.validateZip(&req.codeRequest); err != nil {
		return err
	}
	if req.DryRun {
		v, err := a.reg.ResolveVersion(r.Context(), ref.Name, "")
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, a.shown(v))
	}
	latest, published, err := a.reg.UpdateFunctionCode(r.Context(), ref.Name, registry.UpdateCodeInput{
		ZipFile: req.ZipFile, RevisionID: req.RevisionId, Publish: req.Publish, Architectures: req.Architectures,
		PublishTo: deref(req.PublishTo),
	})
	if err != nil {
		return err
	}
	if published != nil {
		return writeJSON(w, http.StatusOK, publishing(a.shown(published)))
	}
	return writeJSON(w, http.StatusOK, updating(a.shown(latest)))
}

type updateConfigRequest struct {
	configRequest
	RevisionId string `json:"RevisionId"`
}

func (a *api) updateFunctionConfiguration(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	end, err := a.reg.BeginUpdate(ref.Name)
	if err != nil {
		return err
	}
	defer end()
	var req updateConfigRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := req.validate(nil); err != nil {
		return err
	}
	if err := a.checkDeadLetter(ref.Name, req.DeadLetterConfig); err != nil {
		return err
	}
	v, err := a.reg.UpdateFunctionConfiguration(r.Context(), ref.Name, req.RevisionId, func(v *registry.Version) error {
		prev := *v
		if mi := prev.ManagedInstances(); mi != nil {
			c := *mi
			prev.CapacityProviderConfig = &registry.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &c}
		}
		req.configRequest.apply(v)
		if err := a.finishCompute(v, &prev, &req.configRequest); err != nil {
			return err
		}
		if err := finishSnapStart(v); err != nil {
			return err
		}
		return finishLogging(v, req.LoggingConfig)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, updating(a.shown(v)))
}

func (a *api) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	switch q := ref.Qualifier; {
	case q == "":
		err = a.reg.DeleteFunction(r.Context(), ref.Name)
	case q == registry.Latest:
		return awserr.InvalidParameter("$LATEST version cannot be deleted without deleting the function.")
	case isVersion(q) || q == registry.LatestPublished:
		if _, err := a.reg.GetFunction(r.Context(), ref.Name); err != nil {
			return err
		}
		err = a.reg.DeleteVersion(r.Context(), ref.Name, q)
	case aliasNameRE.MatchString(q):
		return awserr.InvalidParameter("Deletion of aliases is not currently supported.")
	default: // neither a version nor an alias ("$latest"): nothing to delete
		if _, err := a.reg.GetFunction(r.Context(), ref.Name); err != nil {
			return err
		}
		return a.reg.FunctionNotFound(ref.Name, q)
	}
	if err != nil {
		return err
	}
	return writeNoContent(w)
}

func isVersion(q string) bool {
	if q == "" {
		return false
	}
	for i := 0; i < len(q); i++ {
		if q[i] < '0' || q[i] > '9' {
			return false
		}
	}
	return true
}
