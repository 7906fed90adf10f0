package lambdaapi

import (
	"net/http"
	"regexp"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Runtime management (API 2021-07-20): GetRuntimeManagementConfig and
// PutRuntimeManagementConfig. When a version picks up a new build of its runtime
// (Auto, FunctionUpdate, Manual) is the registry's to keep; the roll-out of a
// new build reads it.

func (a *api) runtimeManagementRoutes(h func(pattern string, fn handlerFunc)) {
	h("GET /2021-07-20/functions/{name}/runtime-management-config", a.getRuntimeManagementConfig)
	h("PUT /2021-07-20/functions/{name}/runtime-management-config", a.putRuntimeManagementConfig)
}

const (
	runtimeVersionArnPattern = `^arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso(b?)))?-[a-z]+-\d{1}::runtime:.+$`
	updateRuntimeOnEnum      = "[Auto, Manual, FunctionUpdate]"
)

var runtimeVersionArnRE = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:[a-z]{2}(?:(?:-gov)|(?:-iso(?:b?)))?-[a-z]+-\d::runtime:.+$`)

type runtimeManagementResponse struct {
	UpdateRuntimeOn   string `json:"UpdateRuntimeOn"`
	FunctionArn       string `json:"FunctionArn"`
	RuntimeVersionArn string `json:"RuntimeVersionArn,omitempty"`
}

// runtimeManagementAnswer shows c for the function named by ref: the ARN is
// qualified when the request was; the runtime version only for Manual.
func (a *api) runtimeManagementAnswer(ref functionRef, c registry.RuntimeManagementConfig) *runtimeManagementResponse {
	out := &runtimeManagementResponse{UpdateRuntimeOn: c.UpdateRuntimeOn, FunctionArn: a.reg.FunctionARN(ref.Name, ref.Qualifier)}
	if c.UpdateRuntimeOn == registry.UpdateRuntimeManual {
		out.RuntimeVersionArn = c.RuntimeVersionArn
	}
	return out
}

func (a *api) getRuntimeManagementConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	c, _, err := a.reg.GetRuntimeManagementConfig(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.runtimeManagementAnswer(ref, c))
}

type putRuntimeManagementRequest struct {
	UpdateRuntimeOn   *string `json:"UpdateRuntimeOn"`
	RuntimeVersionArn *string `json:"RuntimeVersionArn"`
}

func (a *api) putRuntimeManagementConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	var req putRuntimeManagementRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	c, err := parseRuntimeManagement(&req)
	if err != nil {
		return err
	}
	if _, err := a.reg.PutRuntimeManagementConfig(r.Context(), ref.Name, ref.Qualifier, c); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.runtimeManagementAnswer(ref, c))
}

// parseRuntimeManagement checks a PutRuntimeManagementConfig body: its shape, then
// that Manual names a runtime version and the other modes none.
func parseRuntimeManagement(req *putRuntimeManagementRequest) (registry.RuntimeManagementConfig, error) {
	var v violations
	switch {
	case req.UpdateRuntimeOn == nil:
		v.addRaw("Value null at 'updateRuntimeOn' failed to satisfy constraint: Member must not be null")
	case *req.UpdateRuntimeOn != registry.UpdateRuntimeAuto && *req.UpdateRuntimeOn != registry.UpdateRuntimeManual &&
		*req.UpdateRuntimeOn != registry.UpdateRuntimeFunctionUpdate:
		v.add(*req.UpdateRuntimeOn, "updateRuntimeOn", "Member must satisfy enum value set: "+updateRuntimeOnEnum)
	}
	if arn := req.RuntimeVersionArn; arn != nil {
		switch {
		case len(*arn) < 26:
			v.add(*arn, "runtimeVersionArn", "Member must have length greater than or equal to 26")
		case len(*arn) > 2048:
			v.add(*arn, "runtimeVersionArn", "Member must have length less than or equal to 2048")
		}
		if !runtimeVersionArnRE.MatchString(*arn) {
			v.add(*arn, "runtimeVersionArn", "Member must satisfy regular expression pattern: "+runtimeVersionArnPattern)
		}
	}
	if err := v.err(); err != nil {
		return registry.RuntimeManagementConfig{}, err
	}
	c := registry.RuntimeManagementConfig{UpdateRuntimeOn: *req.UpdateRuntimeOn, RuntimeVersionArn: deref(req.RuntimeVersionArn)}
	switch {
	case c.UpdateRuntimeOn == registry.UpdateRuntimeManual && c.RuntimeVersionArn == "":
		return c, awserr.InvalidParameter("RuntimeVersionArn is required when UpdateRuntimeOn is Manual.")
	case c.UpdateRuntimeOn != registry.UpdateRuntimeManual && c.RuntimeVersionArn != "":
		return c, awserr.InvalidParameter("RuntimeVersionArn can only be set when UpdateRuntimeOn is Manual.")
	}
	return c, nil
}
