package lambdaapi

import (
	"net/http"
	"regexp"
	"strconv"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Function URL configurations: Create, Get, Update, Delete and
// ListFunctionUrlConfigs. The URLs themselves are served by the front door of
// package funcurl; FunctionUrl in the answers is where it serves them
// (Config.FunctionURL).

// urlQualifierPattern is the qualifier of URL operations: an alias, never a version.
const urlQualifierPattern = `((?!^\d+$)^[0-9a-zA-Z-_]+$)`

var urlQualifierRE = regexp.MustCompile(`^[0-9a-zA-Z_-]+$`)

// urlQualifierOK reports whether q matches urlQualifierPattern (RE2 has no look-ahead).
func urlQualifierOK(q string) bool { return urlQualifierRE.MatchString(q) && !isVersionNumber(q) }

func isVersionNumber(q string) bool {
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

// urlRef parses {name} and Qualifier of a function URL operation.
func (a *api) urlRef(r *http.Request) (functionRef, error) {
	q, hasQ := queryValue(r, "Qualifier")
	name := r.PathValue("name")
	var v violations
	ref := functionRef{Name: name}
	if !isPlainName(name) {
		ref = matchName(name, createName, &v)
	}
	if hasQ {
		if len(q) > 128 {
			v.add(q, "qualifier", "Member must have length less than or equal to 128")
		}
		if !urlQualifierOK(q) {
			v.add(q, "qualifier", "Member must satisfy regular expression pattern: "+urlQualifierPattern)
		}
	}
	if err := v.err(); err != nil {
		return ref, err
	}
	if err := a.checkOwner(ref); err != nil {
		return ref, err
	}
	switch {
	case hasQ && ref.ARNQualifier != "" && ref.ARNQualifier != q:
		return ref, awserr.InvalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
	case hasQ:
		ref.Qualifier = q
	case ref.ARNQualifier != "" && !urlQualifierOK(ref.ARNQualifier):
		return ref, patternError(ref.ARNQualifier, "qualifier", urlQualifierPattern)
	}
	return ref, nil
}

// urlConfigRequest is the body of Create and UpdateFunctionUrlConfig.
type urlConfigRequest struct {
	AuthType   *string        `json:"AuthType"`
	Cors       *registry.Cors `json:"Cors"`
	InvokeMode *string        `json:"InvokeMode"`
}

func (b *urlConfigRequest) validate(create bool) error {
	var v violations
	switch {
	case b.AuthType == nil && create:
		v.addRaw("Value null at 'authType' failed to satisfy constraint: Member must not be null")
	case b.AuthType != nil && *b.AuthType != registry.URLAuthNone && *b.AuthType != registry.URLAuthIAM:
		v.add(*b.AuthType, "authType", "Member must satisfy enum value set: [AWS_IAM, NONE]")
	}
	if b.InvokeMode != nil && *b.InvokeMode != registry.URLInvokeBuffered && *b.InvokeMode != registry.URLInvokeStream {
		v.add(*b.InvokeMode, "invokeMode", "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]")
	}
	if c := b.Cors; c != nil {
		if len(c.AllowMethods) > 6 {
			v.add("["+joinList(c.AllowMethods)+"]", "cors.allowMethods", "Member must have length less than or equal to 6")
		}
		for _, m := range c.AllowMethods {
			if len(m) > 6 {
				v.add("["+joinList(c.AllowMethods)+"]", "cors.allowMethods", "Member must satisfy constraint: [Member must have length less than or equal to 6]")
				break
			}
		}
		for field, list := range map[string][]string{"cors.allowHeaders": c.AllowHeaders, "cors.exposeHeaders": c.ExposeHeaders, "cors.allowOrigins": c.AllowOrigins} {
			if len(list) > 100 {
				v.add("["+joinList(list)+"]", field, "Member must have length less than or equal to 100")
			}
		}
		for _, o := range c.AllowOrigins {
			if o == "" || len(o) > 253 {
				v.add("["+joinList(c.AllowOrigins)+"]", "cors.allowOrigins", "Member must satisfy constraint: [Member must have length less than or equal to 253, Member must have length greater than or equal to 1]")
				break
			}
		}
		if c.MaxAge != nil && (*c.MaxAge < 0 || *c.MaxAge > 86400) {
			v.add(strconv.Itoa(*c.MaxAge), "cors.maxAge", "Member must have value less than or equal to 86400")
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	return nil
}

func joinList(l []string) string {
	s := ""
	for i, x := range l {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

// functionURLConfig is a FunctionUrlConfig as Lambda answers it; which members an
// answer carries depends on the operation (urlAnswer).
type functionURLConfig struct {
	AuthType         string         `json:"AuthType"`
	Cors             *registry.Cors `json:"Cors,omitempty"`
	CreationTime     string         `json:"CreationTime"`
	FunctionArn      string         `json:"FunctionArn"`
	FunctionUrl      string         `json:"FunctionUrl"`
	InvokeMode       string         `json:"InvokeMode,omitempty"`
	LastModifiedTime string         `json:"LastModifiedTime,omitempty"`
}

// urlAnswer renders u: Create answers without LastModifiedTime, Create and Update
// carry InvokeMode only once one was set, Get and List always do.
func (a *api) urlAnswer(u *registry.FunctionURL, op string) *functionURLConfig {
	out := &functionURLConfig{
		AuthType: u.AuthType, Cors: u.Cors, CreationTime: u.CreationTime,
		FunctionArn: a.reg.FunctionARN(u.Function, u.Qualifier),
		FunctionUrl: a.functionURL(u.ID), InvokeMode: u.InvokeMode, LastModifiedTime: u.LastModifiedTime,
	}
	switch op {
	case "create":
		out.LastModifiedTime = ""
	case "get", "list":
		out.InvokeMode = u.Mode()
	}
	return out
}

// functionURL is the URL of the function URL with id.
func (a *api) functionURL(id string) string {
	if a.cfg.FunctionURL != nil {
		return a.cfg.FunctionURL(id)
	}
	return "https://" + id + ".lambda-url." + a.cfg.Region + ".on.aws/"
}

func (a *api) createFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	return a.writeFunctionURLConfig(w, r, true)
}

func (a *api) updateFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	return a.writeFunctionURLConfig(w, r, false)
}

// writeFunctionURLConfig is CreateFunctionUrlConfig (create) and
// UpdateFunctionUrlConfig: the same body, validated for the one or the other.
func (a *api) writeFunctionURLConfig(w http.ResponseWriter, r *http.Request, create bool) error {
	ref, err := a.urlRef(r)
	if err != nil {
		return err
	}
	var body urlConfigRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if err := body.validate(create); err != nil {
		return err
	}
	change := registry.FunctionURLChange{AuthType: body.AuthType, Cors: body.Cors, InvokeMode: body.InvokeMode}
	if create {
		u, err := a.reg.CreateFunctionURL(r.Context(), ref.Name, ref.Qualifier, change)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusCreated, a.urlAnswer(u, "create"))
	}
	u, err := a.reg.UpdateFunctionURL(r.Context(), ref.Name, ref.Qualifier, change)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.urlAnswer(u, "update"))
}

func (a *api) getFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.urlRef(r)
	if err != nil {
		return err
	}
	u, err := a.reg.GetFunctionURL(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.urlAnswer(u, "get"))
}

func (a *api) deleteFunctionURLConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.urlRef(r)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteFunctionURL(r.Context(), ref.Name, ref.Qualifier); err != nil {
		return err
	}
	return writeNoContent(w)
}

func (a *api) listFunctionURLConfigs(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var v violations
	ref := functionRef{Name: name}
	if !isPlainName(name) {
		ref = matchName(name, createName, &v)
	}
	if err := v.err(); err != nil {
		return err
	}
	if err := a.checkOwner(ref); err != nil {
		return err
	}
	q := r.URL.Query()
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 50)
	if err != nil {
		return err
	}
	urls, err := a.reg.ListFunctionURLs(r.Context(), ref.Name)
	if err != nil {
		return err
	}
	page, next, err := paginate(urls, func(u *registry.FunctionURL) string { return u.Qualifier }, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := make([]*functionURLConfig, 0, len(page))
	for _, u := range page {
		out = append(out, a.urlAnswer(u, "list"))
	}
	return writeJSON(w, http.StatusOK, struct {
		FunctionUrlConfigs []*functionURLConfig `json:"FunctionUrlConfigs"`
		NextMarker         string               `json:"NextMarker,omitempty"`
	}{out, next})
}
