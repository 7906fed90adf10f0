package lambdaapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Layers (API 2018-10-31): PublishLayerVersion, GetLayerVersion,
// GetLayerVersionByArn, ListLayers, ListLayerVersions, DeleteLayerVersion, and the
// permissions of a layer version (AddLayerVersionPermission,
// RemoveLayerVersionPermission, GetLayerVersionPolicy). The registry stores them;
// a function's layers are checked here for their shape (at most 5, one version of
// each layer) and there for their existence.

func (a *api) layerRoutes(h func(pattern string, fn handlerFunc)) {
	h("POST /2018-10-31/layers/{layer}/versions", a.publishLayerVersion)
	h("GET /2018-10-31/layers/{layer}/versions", a.listLayerVersions)
	h("GET /2018-10-31/layers", a.listLayers)
	h("GET /2018-10-31/layers/{$}", a.listLayers)
	h("GET /2018-10-31/layers/{layer}/versions/{version}", a.getLayerVersion)
	h("DELETE /2018-10-31/layers/{layer}/versions/{version}", a.deleteLayerVersion)
	h("POST /2018-10-31/layers/{layer}/versions/{version}/policy", a.addLayerVersionPermission)
	h("GET /2018-10-31/layers/{layer}/versions/{version}/policy", a.getLayerVersionPolicy)
	h("DELETE /2018-10-31/layers/{layer}/versions/{version}/policy/{sid}", a.removeLayerVersionPermission)
}

// Lambda's patterns for layers, as its validation messages print them.
const (
	layerNamePattern       = `(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+`
	layerVersionArnPattern = `(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)`
	statementIDPattern     = `([a-zA-Z0-9-_]+)`
	layerPrincipalPattern  = `\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root`
	organizationIDPattern  = `o-[a-z0-9]{10,32}`
	// listLayersRuntimes is the enum ListLayers and ListLayerVersions print for an
	// unknown CompatibleRuntime (recorded from AWS; it is not the model's).
	listLayersRuntimes = "[ruby3.5, ruby2.6, dotnetcore1.0, python3.7, nodejs8.10, nasa, ruby2.7, python2.7-greengrass, dotnetcore2.0, python3.8, java21, dotnet6, dotnetcore2.1, python3.9, java11, nodejs6.10, provided, dotnetcore3.1, dotnet8, java25, java17, nodejs, nodejs4.3, java8.al2, go1.x, dotnet10, nodejs20.x, go1.9, byol, nodejs10.x, provided.al2023, nodejs22.x, python3.10, java8, nodejs12.x, python3.11, nodejs24.x, nodejs8.x, python3.12, nodejs14.x, nodejs8.9, nodejs26.x, python3.13, python3.14, nodejs16.x, python3.15, provided.al2, nodejs4.3-edge, nodejs18.x, ruby3.2, python3.4, ruby3.3, ruby3.4, ruby2.5, python3.6, python2.7]"
	// maxLayers is how many layers a function may use.
	maxLayers = 5
)

var (
	layerNameRE       = regexp.MustCompile(`^(?:arn:[a-zA-Z0-9-]+:lambda:(?P<region>[a-zA-Z0-9-]+):(?P<account>\d{12}):layer:(?P<arnname>[a-zA-Z0-9_-]+)|(?P<name>[a-zA-Z0-9_-]+))$`)
	layerVersionArnRE = regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:\d{12}:layer:[a-zA-Z0-9_-]+:[0-9]+|arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9_-]+)$`)
	statementIDRE     = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	layerPrincipalRE  = regexp.MustCompile(`^(?:\d{12}|\*|arn:aws[a-zA-Z-]*:iam::\d{12}:root)$`)
	organizationIDRE  = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	listLayersRuntime = enumSet(listLayersRuntimes)
)

// enumSet reads an enum as Lambda prints it ("[a, b]").
func enumSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, v := range strings.Split(strings.Trim(s, "[]"), ", ") {
		out[v] = true
	}
	return out
}

// layerRef is the layer a request names: its name, and whether it is this
// account's and region's (a layer ARN may name another's).
type layerRef struct {
	name    string
	foreign bool
}

// layerName parses the {layer} path parameter: a name or a layer ARN.
func (a *api) layerName(r *http.Request) (layerRef, error) {
	raw := r.PathValue("layer")
	m := layerNameRE.FindStringSubmatch(raw)
	var v violations
	if len(raw) > 140 {
		v.add(raw, "layerName", "Member must have length less than or equal to 140")
	}
	if m == nil {
		v.add(raw, "layerName", "Member must satisfy regular expression pattern: "+layerNamePattern)
	}
	if err := v.err(); err != nil {
		return layerRef{}, err
	}
	if n := m[layerNameRE.SubexpIndex("name")]; n != "" {
		return layerRef{name: n}, nil
	}
	return layerRef{
		name: m[layerNameRE.SubexpIndex("arnname")],
		foreign: m[layerNameRE.SubexpIndex("region")] != a.cfg.Region ||
			m[layerNameRE.SubexpIndex("account")] != a.cfg.AccountID,
	}, nil
}

// layerVersionNumber parses the {version} path parameter.
func layerVersionNumber(r *http.Request) (int64, error) {
	raw := r.PathValue("version")
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, awserr.InvalidParameter("Invalid VersionNumber: %s", raw)
	}
	if n < 1 {
		return 0, awserr.InvalidParameter("Layer Version Cannot be less than 1")
	}
	return n, nil
}

// layerVersionRef parses a layer version in the path.
func (a *api) layerVersionRef(r *http.Request) (layerRef, int64, error) {
	ref, err := a.layerName(r)
	if err != nil {
		return ref, 0, err
	}
	n, err := layerVersionNumber(r)
	return ref, n, err
}

type publishLayerRequest struct {
	Content                 *codeRequest `json:"Content"`
	Description             *string      `json:"Description"`
	CompatibleRuntimes      []string     `json:"CompatibleRuntimes"`
	LicenseInfo             *string      `json:"LicenseInfo"`
	CompatibleArchitectures []string     `json:"CompatibleArchitectures"`
}

// layerVersionContent is where a layer version's zip is, and what it is.
type layerVersionContent struct {
	Location   string `json:"Location"`
	CodeSha256 string `json:"CodeSha256"`
	CodeSize   int64  `json:"CodeSize"`
}

// layerVersionBody is a layer version as PublishLayerVersion, GetLayerVersion and
// GetLayerVersionByArn show it; the lists show it without Content and LayerArn.
// Compatible lists are left out when the publish left them out, and shown empty
// when it sent them empty.
type layerVersionBody struct {
	Content                 *layerVersionContent `json:"Content,omitempty"`
	LayerArn                string               `json:"LayerArn,omitempty"`
	LayerVersionArn         string               `json:"LayerVersionArn"`
	Description             string               `json:"Description"`
	CreatedDate             string               `json:"CreatedDate"`
	Version                 int64                `json:"Version"`
	CompatibleRuntimes      *[]string            `json:"CompatibleRuntimes,omitempty"`
	LicenseInfo             string               `json:"LicenseInfo,omitempty"`
	CompatibleArchitectures *[]string            `json:"CompatibleArchitectures,omitempty"`
}

// listAsGiven is a list as the request gave it: nil when left out.
func listAsGiven(s []string) *[]string {
	if s == nil {
		return nil
	}
	return &s
}

// layerBody shows lv; with r, whole (with Content and LayerArn), else as a list
// item.
func (a *api) layerBody(r *http.Request, lv *registry.LayerVersion) *layerVersionBody {
	b := &layerVersionBody{
		LayerVersionArn: lv.LayerVersionArn, Description: lv.Description, CreatedDate: lv.CreatedDate,
		Version: lv.Version, CompatibleRuntimes: listAsGiven(lv.CompatibleRuntimes), LicenseInfo: lv.LicenseInfo,
		CompatibleArchitectures: listAsGiven(lv.CompatibleArchitectures),
	}
	if r != nil {
		b.LayerArn = lv.LayerArn
		b.Content = &layerVersionContent{Location: a.codeURL(r, lv.CodeSha256), CodeSha256: lv.CodeSha256, CodeSize: lv.CodeSize}
	}
	return b
}

// checkCompatible records the constraints Compatible lists fail.
func checkCompatible(runtimes, archs []string, v *violations) {
	if len(runtimes) > 15 {
		v.add("["+strings.Join(runtimes, ", ")+"]", "compatibleRuntimes", "Member must have length less than or equal to 15")
	}
	for _, rt := range runtimes {
		if _, known := knownRuntimes[rt]; !known && !deprecatedRuntimes[rt] {
			v.add("["+strings.Join(runtimes, ", ")+"]", "compatibleRuntimes", "Member must satisfy enum value set: "+awsRuntimes)
			break
		}
	}
	if len(archs) > 2 {
		v.add("["+strings.Join(archs, ", ")+"]", "compatibleArchitectures", "Member must have length less than or equal to 2")
	}
	for _, arch := range archs {
		if arch != "x86_64" && arch != "arm64" {
			v.add("["+strings.Join(archs, ", ")+"]", "compatibleArchitectures", "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]")
			break
		}
	}
}

// parsePublishLayer decodes and validates a PublishLayerVersion body: the
// request's shape (one ValidationException listing each failure), then its zip.
func (a *api) parsePublishLayer(body []byte) (*publishLayerRequest, error) {
	var req publishLayerRequest
	if err := unmarshalBody(body, &req); err != nil {
		return nil, err
	}
	var v violations
	if req.Content == nil {
		v.addRaw("Value null at 'content' failed to satisfy constraint: Member must not be null")
	}
	if req.Description != nil && len(*req.Description) > 256 {
		v.add(*req.Description, "description", "Member must have length less than or equal to 256")
	}
	if req.LicenseInfo != nil && len(*req.LicenseInfo) > 512 {
		v.add(*req.LicenseInfo, "licenseInfo", "Member must have length less than or equal to 512")
	}
	checkCompatible(req.CompatibleRuntimes, req.CompatibleArchitectures, &v)
	if err := v.err(); err != nil {
		return nil, err
	}
	if err := a.validateZip(req.Content); err != nil {
		return nil, err
	}
	return &req, nil
}

func (a *api) publishLayerVersion(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.layerName(r)
	if err != nil {
		return err
	}
	body, err := readBody(r, a.cfg.MaxRequestBytes, func() error {
		return requestEntityTooLarge("Request must be smaller than %d bytes for the PublishLayerVersion operation", a.cfg.MaxRequestBytes)
	})
	if err != nil {
		return err
	}
	req, err := a.parsePublishLayer(body)
	if err != nil {
		return err
	}
	if ref.foreign {
		return &awserr.Error{Code: awserr.CodeAccessDenied, Status: http.StatusForbidden,
			Message: "User is not authorized to perform: lambda:PublishLayerVersion on resource: " + r.PathValue("layer")}
	}
	lv, err := a.reg.PublishLayerVersion(r.Context(), registry.PublishLayerInput{
		Name: ref.name, ZipFile: req.Content.ZipFile, Description: deref(req.Description), LicenseInfo: deref(req.LicenseInfo),
		CompatibleRuntimes: req.CompatibleRuntimes, CompatibleArchitectures: req.CompatibleArchitectures,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a.layerBody(r, lv))
}

func (a *api) getLayerVersion(w http.ResponseWriter, r *http.Request) error {
	ref, n, err := a.layerVersionRef(r)
	if err != nil {
		return err
	}
	if ref.foreign {
		return awserr.NotFound("The resource you requested does not exist.")
	}
	lv, err := a.reg.GetLayerVersion(r.Context(), ref.name, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.layerBody(r, lv))
}

// getLayerVersionByArn answers GET /2018-10-31/layers?find=LayerVersion&Arn=…
func (a *api) getLayerVersionByArn(w http.ResponseWriter, r *http.Request, arn string) error {
	if len(arn) > 140 || !layerVersionArnRE.MatchString(arn) {
		return patternError(arn, "arn", layerVersionArnPattern)
	}
	i := strings.LastIndexByte(arn, ':')
	n, _ := strconv.ParseInt(arn[i+1:], 10, 64)
	base := arn[:i]
	name := base[strings.LastIndexByte(base, ':')+1:]
	if strings.Contains(arn, ":::awslayer:") || base != a.reg.LayerARN(name) {
		return awserr.NotFound("The resource you requested does not exist.")
	}
	if n < 1 {
		return awserr.InvalidParameter("Layer Version Cannot be less than 1")
	}
	lv, err := a.reg.GetLayerVersion(r.Context(), name, n)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.layerBody(r, lv))
}

func (a *api) deleteLayerVersion(w http.ResponseWriter, r *http.Request) error {
	ref, n, err := a.layerVersionRef(r)
	if err != nil {
		return err
	}
	if !ref.foreign {
		if err := a.reg.DeleteLayerVersion(r.Context(), ref.name, n); err != nil {
			return err
		}
	}
	return writeNoContent(w)
}

// layerFilter is the CompatibleRuntime and CompatibleArchitecture of a list.
type layerFilter struct{ runtime, arch string }

func parseLayerFilter(r *http.Request) (layerFilter, error) {
	q := r.URL.Query()
	f := layerFilter{runtime: q.Get("CompatibleRuntime"), arch: q.Get("CompatibleArchitecture")}
	if f.runtime != "" && !listLayersRuntime[f.runtime] {
		return f, validationError(f.runtime, "compatibleRuntime", "Member must satisfy enum value set: "+listLayersRuntimes)
	}
	if f.arch != "" && f.arch != "x86_64" && f.arch != "arm64" {
		return f, validationError(f.arch, "compatibleArchitecture", "Member must satisfy enum value set: [x86_64, arm64]")
	}
	return f, nil
}

func (f layerFilter) matches(lv *registry.LayerVersion) bool {
	has := func(list []string, v string) bool {
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	return (f.runtime == "" || has(lv.CompatibleRuntimes, f.runtime)) &&
		(f.arch == "" || has(lv.CompatibleArchitectures, f.arch))
}

type listLayerVersionsResponse struct {
	LayerVersions []*layerVersionBody `json:"LayerVersions"`
	NextMarker    string              `json:"NextMarker,omitempty"`
}

func (a *api) listLayerVersions(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.layerName(r)
	if err != nil {
		return err
	}
	f, err := parseLayerFilter(r)
	if err != nil {
		return err
	}
	maxItems, err := parseMaxItems(r.URL.Query().Get("MaxItems"), 50, 50)
	if err != nil {
		return err
	}
	var vs []*registry.LayerVersion
	if !ref.foreign {
		all, err := a.reg.ListLayerVersions(r.Context(), ref.name)
		if err != nil {
			return err
		}
		for _, lv := range all {
			if f.matches(lv) {
				vs = append(vs, lv)
			}
		}
	}
	// Newest first: the key sorts as the list does.
	page, next, err := paginate(vs, func(lv *registry.LayerVersion) string {
		return strconv.FormatInt(1<<62-lv.Version, 10)
	}, r.URL.Query().Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listLayerVersionsResponse{LayerVersions: make([]*layerVersionBody, 0, len(page)), NextMarker: next}
	for _, lv := range page {
		out.LayerVersions = append(out.LayerVersions, a.layerBody(nil, lv))
	}
	return writeJSON(w, http.StatusOK, &out)
}

type layersListItem struct {
	LayerName             string            `json:"LayerName"`
	LayerArn              string            `json:"LayerArn"`
	LatestMatchingVersion *layerVersionBody `json:"LatestMatchingVersion"`
}

type listLayersResponse struct {
	Layers     []layersListItem `json:"Layers"`
	NextMarker string           `json:"NextMarker,omitempty"`
}

// listLayers answers ListLayers, and GetLayerVersionByArn, which shares its path.
func (a *api) listLayers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if q.Get("find") == "LayerVersion" {
		return a.getLayerVersionByArn(w, r, q.Get("Arn"))
	}
	f, err := parseLayerFilter(r)
	if err != nil {
		return err
	}
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 50)
	if err != nil {
		return err
	}
	var items []layersListItem
	for _, l := range a.reg.ListLayers(r.Context()) {
		for _, lv := range l.Versions { // newest first
			if f.matches(lv) {
				items = append(items, layersListItem{LayerName: l.Name, LayerArn: l.Arn, LatestMatchingVersion: a.layerBody(nil, lv)})
				break
			}
		}
	}
	page, next, err := paginate(items, func(it layersListItem) string { return it.LayerName }, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &listLayersResponse{Layers: append([]layersListItem{}, page...), NextMarker: next})
}

type addLayerPermissionRequest struct {
	StatementId    *string `json:"StatementId"`
	Action         *string `json:"Action"`
	Principal      *string `json:"Principal"`
	OrganizationId *string `json:"OrganizationId"`
}

type addLayerPermissionResponse struct {
	Statement  string `json:"Statement"`
	RevisionId string `json:"RevisionId"`
}

func (a *api) addLayerVersionPermission(w http.ResponseWriter, r *http.Request) error {
	ref, n, err := a.layerVersionRef(r)
	if err != nil {
		return err
	}
	var req addLayerPermissionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var v violations
	switch {
	case req.StatementId == nil:
		v.addRaw("Value null at 'statementId' failed to satisfy constraint: Member must not be null")
	case len(*req.StatementId) > 100:
		v.add(*req.StatementId, "statementId", "Member must have length less than or equal to 100")
	case !statementIDRE.MatchString(*req.StatementId):
		v.add(*req.StatementId, "statementId", "Member must satisfy regular expression pattern: "+statementIDPattern)
	}
	switch {
	case req.Action == nil:
		v.addRaw("Value null at 'action' failed to satisfy constraint: Member must not be null")
	case *req.Action != "lambda:GetLayerVersion":
		v.add(*req.Action, "action", "Member must satisfy regular expression pattern: lambda:GetLayerVersion")
	}
	switch {
	case req.Principal == nil:
		v.addRaw("Value null at 'principal' failed to satisfy constraint: Member must not be null")
	case !layerPrincipalRE.MatchString(*req.Principal):
		v.add(*req.Principal, "principal", "Member must satisfy regular expression pattern: "+layerPrincipalPattern)
	}
	if o := req.OrganizationId; o != nil && (len(*o) > 34 || !organizationIDRE.MatchString(*o)) {
		v.add(*o, "organizationId", "Member must satisfy regular expression pattern: "+organizationIDPattern)
	}
	if err := v.err(); err != nil {
		return err
	}
	if ref.foreign {
		return awserr.NotFound("Layer version %s:%d does not exist.", r.PathValue("layer"), n)
	}
	st := registry.LayerStatement{Sid: *req.StatementId, Action: *req.Action, Principal: principalJSON(*req.Principal)}
	if req.OrganizationId != nil {
		st.Condition = map[string]map[string]string{"StringEquals": {"aws:PrincipalOrgID": *req.OrganizationId}}
	}
	rev, _ := queryValue(r, "RevisionId")
	st, revision, err := a.reg.AddLayerVersionPermission(r.Context(), ref.name, n, st, rev)
	if err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return awserr.Service(err, "failed to encode the statement")
	}
	return writeJSON(w, http.StatusCreated, &addLayerPermissionResponse{Statement: string(b), RevisionId: revision})
}

// principalJSON is a statement's Principal for a request's: "*", or the account's
// root as {"AWS": …}.
func principalJSON(p string) json.RawMessage {
	if p == "*" {
		return json.RawMessage(`"*"`)
	}
	if !strings.HasPrefix(p, "arn:") {
		p = "arn:aws:iam::" + p + ":root"
	}
	b, _ := json.Marshal(map[string]string{"AWS": p})
	return b
}

type layerPolicyResponse struct {
	Policy     string `json:"Policy"`
	RevisionId string `json:"RevisionId"`
}

func (a *api) getLayerVersionPolicy(w http.ResponseWriter, r *http.Request) error {
	ref, n, err := a.layerVersionRef(r)
	if err != nil {
		return err
	}
	if ref.foreign {
		return awserr.NotFound("Layer version %s:%d does not exist.", r.PathValue("layer"), n)
	}
	p, err := a.reg.GetLayerVersionPolicy(r.Context(), ref.name, n)
	if err != nil {
		return err
	}
	b, err := json.Marshal(registry.LayerPolicyDocument(p))
	if err != nil {
		return awserr.Service(err, "failed to encode the policy")
	}
	return writeJSON(w, http.StatusOK, &layerPolicyResponse{Policy: string(b), RevisionId: p.RevisionId})
}

func (a *api) removeLayerVersionPermission(w http.ResponseWriter, r *http.Request) error {
	ref, n, err := a.layerVersionRef(r)
	if err != nil {
		return err
	}
	sid := r.PathValue("sid")
	if len(sid) > 100 || !statementIDRE.MatchString(sid) {
		return patternError(sid, "statementId", statementIDPattern)
	}
	if ref.foreign {
		return awserr.NotFound("Layer version %s:%d does not exist.", r.PathValue("layer"), n)
	}
	rev, _ := queryValue(r, "RevisionId")
	if err := a.reg.RemoveLayerVersionPermission(r.Context(), ref.name, n, sid, rev); err != nil {
		return err
	}
	return writeNoContent(w)
}

// checkLayers records the constraints a function's Layers fail (each a layer
// version ARN of at most 2048 characters).
func checkLayers(layers []string, v *violations) {
	for _, l := range layers {
		if len(l) < 1 || len(l) > 2048 || !layerVersionArnRE.MatchString(l) {
			v.add("["+strings.Join(layers, ", ")+"]", "layers", "Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: "+layerVersionArnPattern+", Member must not be null]")
			return
		}
	}
}

// validateLayers applies Lambda's rules on a function's layers: at most 5, and no
// two versions of one layer. That they exist is the registry's to check.
func validateLayers(layers []string) error {
	if len(layers) > maxLayers {
		return awserr.InvalidParameter("Cannot reference more than %d layers.", maxLayers)
	}
	base := func(arn string) string { return arn[:strings.LastIndexByte(arn, ':')] }
	for i := range layers {
		for j := i + 1; j < len(layers); j++ {
			if base(layers[i]) == base(layers[j]) {
				return awserr.InvalidParameter("Two different versions of the same layer are not allowed to be referenced in the same function. %s and %s are versions of the same layer.", layers[i], layers[j])
			}
		}
	}
	return nil
}
