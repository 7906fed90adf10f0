package lambdaapi

import (
	"net/http"
	"regexp"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Function scaling configs of Managed Instances versions (API 2025-11-30).

const publishedQualifierPattern = `(\$LATEST\.PUBLISHED|[0-9]+)`

var publishedQualifierRE = regexp.MustCompile(`^(?:\$LATEST\.PUBLISHED|[0-9]+)$`)

type functionScalingConfig struct {
	MinExecutionEnvironments *int `json:"MinExecutionEnvironments,omitempty"`
	MaxExecutionEnvironments *int `json:"MaxExecutionEnvironments,omitempty"`
}

type putScalingConfigRequest struct {
	FunctionScalingConfig *functionScalingConfig `json:"FunctionScalingConfig"`
}

type putScalingConfigResponse struct {
	FunctionState string `json:"FunctionState"`
}

type getScalingConfigResponse struct {
	FunctionArn                    string                 `json:"FunctionArn"`
	AppliedFunctionScalingConfig   *functionScalingConfig `json:"AppliedFunctionScalingConfig,omitempty"`
	RequestedFunctionScalingConfig *functionScalingConfig `json:"RequestedFunctionScalingConfig,omitempty"`
}

// scalingRef reads the function and its required Qualifier ($LATEST.PUBLISHED or a
// version number).
func (a *api) scalingRef(r *http.Request) (functionRef, error) {
	q, ok := queryValue(r, "Qualifier")
	ref, err := a.parseFunctionName(r.PathValue("name"))
	if err != nil {
		return ref, err
	}
	if !ok {
		if ref.ARNQualifier == "" {
			return ref, nullError("qualifier")
		}
		q = ref.ARNQualifier
	}
	if len(q) > 128 {
		return ref, validationError(q, "qualifier", "Member must have length less than or equal to 128")
	}
	if !publishedQualifierRE.MatchString(q) {
		return ref, patternError(q, "qualifier", publishedQualifierPattern)
	}
	if ref.ARNQualifier != "" && ref.ARNQualifier != q {
		return ref, awserr.InvalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
	}
	ref.Qualifier = q
	return ref, nil
}

// validateFunctionScaling checks min and max execution environments: each 0..15000,
// min ≤ max once the defaults apply (min 3, no max), and min = 0 only with max = 0.
// The config it returns has the default minimum filled in: a value left out reverts
// to its default, and the requested config shows the minimum that applies.
func validateFunctionScaling(c *functionScalingConfig) (registry.ScalingConfig, error) {
	lo := registry.DefaultMinExecutionEnvironments
	out := registry.ScalingConfig{MinExecutionEnvironments: &lo}
	if c == nil {
		return out, nil
	}
	for field, p := range map[string]*int{
		"functionScalingConfig.minExecutionEnvironments": c.MinExecutionEnvironments,
		"functionScalingConfig.maxExecutionEnvironments": c.MaxExecutionEnvironments,
	} {
		if p == nil {
			continue
		}
		if *p < 0 {
			return out, validationError(itoa(*p), field, "Member must have value greater than or equal to 0")
		}
		if *p > registry.MaxExecutionEnvironmentsLimit {
			return out, validationError(itoa(*p), field, "Member must have value less than or equal to 15000")
		}
	}
	if c.MinExecutionEnvironments != nil {
		out.MinExecutionEnvironments = c.MinExecutionEnvironments
	}
	out.MaxExecutionEnvironments = c.MaxExecutionEnvironments
	lo, hi := out.Bounds()
	if lo > hi {
		return out, awserr.InvalidParameter("MinExecutionEnvironments (%d) must not be greater than MaxExecutionEnvironments (%d).", lo, hi)
	}
	if lo == 0 && hi != 0 {
		return out, awserr.InvalidParameter("MinExecutionEnvironments can be 0 only when MaxExecutionEnvironments is 0 (which deactivates the function version).")
	}
	return out, nil
}

func (a *api) putFunctionScalingConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.scalingRef(r)
	if err != nil {
		return err
	}
	var req putScalingConfigRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	cfg, err := validateFunctionScaling(req.FunctionScalingConfig)
	if err != nil {
		return err
	}
	state, err := a.reg.PutFunctionScalingConfig(r.Context(), ref.Name, ref.Qualifier, cfg)
	if err != nil {
		return a.notFoundAs(err, ref)
	}
	return writeJSON(w, http.StatusAccepted, &putScalingConfigResponse{FunctionState: state})
}

func (a *api) getFunctionScalingConfig(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.scalingRef(r)
	if err != nil {
		return err
	}
	requested, applied, err := a.reg.GetFunctionScalingConfig(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return a.notFoundAs(err, ref)
	}
	out := getScalingConfigResponse{FunctionArn: a.reg.FunctionARN(ref.Name, ref.Qualifier)}
	if requested != nil {
		out.RequestedFunctionScalingConfig = &functionScalingConfig{requested.MinExecutionEnvironments, requested.MaxExecutionEnvironments}
	}
	if applied != nil {
		out.AppliedFunctionScalingConfig = &functionScalingConfig{applied.MinExecutionEnvironments, applied.MaxExecutionEnvironments}
	}
	return writeJSON(w, http.StatusOK, &out)
}
