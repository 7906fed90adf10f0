package lambdaapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/pricing"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Capacity providers of Lambda Managed Instances (API 2025-11-30).

const (
	capacityProviderNamePattern = `(arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:capacity-provider:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+`
	subnetIDPattern             = `subnet-[0-9a-z]*`
	securityGroupIDPattern      = `sg-[0-9a-zA-Z]*`
	instanceTypePattern         = `[a-zA-Z0-9\.\*\-]+`
	logGroupPattern             = `[\.\-_/#A-Za-z0-9]+`
	metricCPU                   = "LambdaCapacityProviderAverageCPUUtilization"
	maxCapacityProviderNameLen  = 64
	maxCapacityProviderPageSize = 50
)

var (
	capacityProviderNameRE = regexp.MustCompile(`^(?:arn:aws[a-zA-Z-]*:lambda:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d):(?P<account>\d{12}):capacity-provider:(?P<arnname>[a-zA-Z0-9_-]+)|(?P<name>[a-zA-Z0-9_-]+))$`)
	subnetIDRE             = regexp.MustCompile(`^subnet-[0-9a-z]*$`)
	securityGroupIDRE      = regexp.MustCompile(`^sg-[0-9a-zA-Z]*$`)
	instanceTypeRE         = regexp.MustCompile(`^[a-zA-Z0-9.*-]+$`)
	logGroupRE             = regexp.MustCompile(`^[._/#A-Za-z0-9-]+$`)
	kmsKeyArnRE            = regexp.MustCompile(`^arn:(?:aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*$`)
)

// parseCapacityProviderName accepts a name or an ARN of this account and region.
func (a *api) parseCapacityProviderName(raw, field string) (string, error) {
	if len(raw) > 140 {
		return "", validationError(raw, field, "Member must have length less than or equal to 140")
	}
	m := capacityProviderNameRE.FindStringSubmatch(raw)
	if m == nil {
		return "", patternError(raw, field, capacityProviderNamePattern)
	}
	name := m[capacityProviderNameRE.SubexpIndex("name")]
	if name == "" {
		name = m[capacityProviderNameRE.SubexpIndex("arnname")]
		region, account := m[capacityProviderNameRE.SubexpIndex("region")], m[capacityProviderNameRE.SubexpIndex("account")]
		if region != a.cfg.Region || account != a.cfg.AccountID {
			return "", awserr.NotFound("Capacity provider not found: %s", raw)
		}
	}
	if len(name) > maxCapacityProviderNameLen {
		return "", validationError(name, field, fmt.Sprintf("Member must have length less than or equal to %d", maxCapacityProviderNameLen))
	}
	return name, nil
}

// capacityProviderRequest is the body of CreateCapacityProvider; UpdateCapacityProvider
// uses the mutable part of it.
type capacityProviderRequest struct {
	CapacityProviderName          *string                                     `json:"CapacityProviderName"`
	VpcConfig                     *vpcConfigRequest                           `json:"VpcConfig"`
	PermissionsConfig             *registry.CapacityProviderPermissionsConfig `json:"PermissionsConfig"`
	InstanceRequirements          *registry.InstanceRequirements              `json:"InstanceRequirements"`
	CapacityProviderScalingConfig *scalingConfigRequest                       `json:"CapacityProviderScalingConfig"`
	KmsKeyArn                     *string                                     `json:"KmsKeyArn"`
	Tags                          map[string]string                           `json:"Tags"`
	PropagateTags                 *registry.PropagateTags                     `json:"PropagateTags"`
	TelemetryConfig               *registry.CapacityProviderTelemetryConfig   `json:"TelemetryConfig"`
}

type vpcConfigRequest struct {
	SubnetIds        []string `json:"SubnetIds"`
	SecurityGroupIds []string `json:"SecurityGroupIds"`
}

type scalingConfigRequest struct {
	MaxVCpuCount    *int                          `json:"MaxVCpuCount"`
	ScalingMode     *string                       `json:"ScalingMode"`
	ScalingPolicies []targetTrackingPolicyRequest `json:"ScalingPolicies"`
}

type targetTrackingPolicyRequest struct {
	PredefinedMetricType *string  `json:"PredefinedMetricType"`
	TargetValue          *float64 `json:"TargetValue"`
}

// createCapacityProvider is the validated form of a CreateCapacityProvider body.
type createCapacityProvider struct {
	Name     string
	Provider registry.CapacityProvider
	Tags     map[string]string
}

// parseCreateCapacityProvider decodes and validates a CreateCapacityProvider body and
// fills in Lambda's defaults (x86_64, Auto scaling, 400 vCPUs).
func (a *api) parseCreateCapacityProvider(body []byte) (*createCapacityProvider, error) {
	var req capacityProviderRequest
	if err := unmarshalBody(body, &req); err != nil {
		return nil, err
	}
	if req.CapacityProviderName == nil {
		return nil, nullError("capacityProviderName")
	}
	name, err := a.parseCapacityProviderName(*req.CapacityProviderName, "capacityProviderName")
	if err != nil {
		return nil, err
	}
	out := &createCapacityProvider{Name: name, Tags: req.Tags}
	cp := &out.Provider
	if req.VpcConfig == nil {
		return nil, nullError("vpcConfig")
	}
	if cp.VpcConfig, err = validateCapacityProviderVpc(req.VpcConfig); err != nil {
		return nil, err
	}
	if req.PermissionsConfig == nil {
		return nil, nullError("permissionsConfig")
	}
	role := req.PermissionsConfig.CapacityProviderOperatorRoleArn
	if role == "" {
		return nil, nullError("permissionsConfig.capacityProviderOperatorRoleArn")
	}
	if !roleRE.MatchString(role) {
		return nil, patternError(role, "permissionsConfig.capacityProviderOperatorRoleArn", rolePattern)
	}
	cp.PermissionsConfig = &registry.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: role}
	if cp.InstanceRequirements, err = validateInstanceRequirements(req.InstanceRequirements); err != nil {
		return nil, err
	}
	if cp.CapacityProviderScalingConfig, err = validateScalingConfig(req.CapacityProviderScalingConfig, true); err != nil {
		return nil, err
	}
	if req.KmsKeyArn != nil && *req.KmsKeyArn != "" {
		if len(*req.KmsKeyArn) > 10000 || !kmsKeyArnRE.MatchString(*req.KmsKeyArn) {
			return nil, patternError(*req.KmsKeyArn, "kmsKeyArn", `(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()`)
		}
		cp.KmsKeyArn = *req.KmsKeyArn
	}
	if err := validateTags(req.Tags, "tags", 50); err != nil {
		return nil, err
	}
	if cp.PropagateTags, err = validatePropagateTags(req.PropagateTags); err != nil {
		return nil, err
	}
	if cp.TelemetryConfig, err = validateTelemetry(req.TelemetryConfig); err != nil {
		return nil, err
	}
	return out, nil
}

func validateCapacityProviderVpc(v *vpcConfigRequest) (*registry.CapacityProviderVpcConfig, error) {
	shown := func(ids []string) string { return "[" + strings.Join(ids, ", ") + "]" }
	if v.SubnetIds == nil {
		return nil, nullError("vpcConfig.subnetIds")
	}
	if len(v.SubnetIds) < 1 {
		return nil, validationError(shown(v.SubnetIds), "vpcConfig.subnetIds", "Member must have length greater than or equal to 1")
	}
	if len(v.SubnetIds) > 16 {
		return nil, validationError(shown(v.SubnetIds), "vpcConfig.subnetIds", "Member must have length less than or equal to 16")
	}
	for _, id := range v.SubnetIds {
		if len(id) > 1024 || !subnetIDRE.MatchString(id) {
			return nil, validationError(shown(v.SubnetIds), "vpcConfig.subnetIds", "Member must satisfy constraint: [Member must satisfy regular expression pattern: "+subnetIDPattern+"]")
		}
	}
	if len(v.SecurityGroupIds) > 5 {
		return nil, validationError(shown(v.SecurityGroupIds), "vpcConfig.securityGroupIds", "Member must have length less than or equal to 5")
	}
	for _, id := range v.SecurityGroupIds {
		if len(id) > 1024 || !securityGroupIDRE.MatchString(id) {
			return nil, validationError(shown(v.SecurityGroupIds), "vpcConfig.securityGroupIds", "Member must satisfy constraint: [Member must satisfy regular expression pattern: "+securityGroupIDPattern+"]")
		}
	}
	sgs := v.SecurityGroupIds
	if sgs == nil {
		sgs = []string{}
	}
	return &registry.CapacityProviderVpcConfig{SubnetIds: v.SubnetIds, SecurityGroupIds: sgs}, nil
}

// validateInstanceRequirements checks the architecture and the instance type patterns,
// and that at least one instance type of the catalogue matches them.
func validateInstanceRequirements(ir *registry.InstanceRequirements) (*registry.InstanceRequirements, error) {
	out := registry.InstanceRequirements{Architectures: []string{"x86_64"}}
	if ir != nil {
		if ir.Architectures != nil {
			if err := validateArchitectures(ir.Architectures); err != nil {
				return nil, withField(err, "architectures", "instanceRequirements.architectures")
			}
			out.Architectures = ir.Architectures
		}
		if len(ir.AllowedInstanceTypes) > 0 && len(ir.ExcludedInstanceTypes) > 0 {
			return nil, awserr.InvalidParameter("AllowedInstanceTypes and ExcludedInstanceTypes cannot both be specified.")
		}
		for field, list := range map[string][]string{
			"instanceRequirements.allowedInstanceTypes":  ir.AllowedInstanceTypes,
			"instanceRequirements.excludedInstanceTypes": ir.ExcludedInstanceTypes,
		} {
			if len(list) > 400 {
				return nil, validationError(fmt.Sprint(len(list)), field, "Member must have length less than or equal to 400")
			}
			for _, t := range list {
				if len(t) < 1 || len(t) > 30 || !instanceTypeRE.MatchString(t) {
					return nil, validationError("["+strings.Join(list, ", ")+"]", field,
						"Member must satisfy constraint: [Member must have length less than or equal to 30, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: "+instanceTypePattern+"]")
				}
			}
		}
		out.AllowedInstanceTypes, out.ExcludedInstanceTypes = ir.AllowedInstanceTypes, ir.ExcludedInstanceTypes
	}
	types := pricing.MatchInstanceTypes(pricing.Default(), pricing.Arch(out.Architectures[0]), out.AllowedInstanceTypes, out.ExcludedInstanceTypes)
	if len(types) == 0 {
		return nil, awserr.InvalidParameter("No supported instance type matches the instance requirements (architecture %s). Capacity providers use C, M and R instance types of size large or bigger.", out.Architectures[0])
	}
	return &out, nil
}

// withField renames the field in a validation message.
func withField(err error, from, to string) error {
	if e := awserr.As(err); e != nil {
		c := *e
		c.Message = strings.Replace(c.Message, "'"+from+"'", "'"+to+"'", 1)
		return &c
	}
	return err
}

// validateScalingConfig checks a CapacityProviderScalingConfig; withDefaults fills in
// Auto and 400 vCPUs (on create, and on update for a config given without them).
func validateScalingConfig(s *scalingConfigRequest, withDefaults bool) (*registry.CapacityProviderScalingConfig, error) {
	out := &registry.CapacityProviderScalingConfig{}
	if withDefaults {
		out.ScalingMode, out.MaxVCpuCount = "Auto", registry.DefaultMaxVCpuCount
	}
	if s == nil {
		return out, nil
	}
	if s.ScalingMode != nil {
		if *s.ScalingMode != "Auto" && *s.ScalingMode != "Manual" {
			return nil, validationError(*s.ScalingMode, "capacityProviderScalingConfig.scalingMode", "Member must satisfy enum value set: [Auto, Manual]")
		}
		out.ScalingMode = *s.ScalingMode
	}
	if s.MaxVCpuCount != nil {
		n := *s.MaxVCpuCount
		if n < 2 {
			return nil, validationError(itoa(n), "capacityProviderScalingConfig.maxVCpuCount", "Member must have value greater than or equal to 2")
		}
		if n > 15000 {
			return nil, validationError(itoa(n), "capacityProviderScalingConfig.maxVCpuCount", "Member must have value less than or equal to 15000")
		}
		out.MaxVCpuCount = n
	}
	if s.ScalingPolicies != nil {
		if len(s.ScalingPolicies) < 1 {
			return nil, validationError("[]", "capacityProviderScalingConfig.scalingPolicies", "Member must have length greater than or equal to 1")
		}
		if len(s.ScalingPolicies) > 10 {
			return nil, validationError(itoa(len(s.ScalingPolicies)), "capacityProviderScalingConfig.scalingPolicies", "Member must have length less than or equal to 10")
		}
		for _, p := range s.ScalingPolicies {
			if p.PredefinedMetricType == nil {
				return nil, nullError("capacityProviderScalingConfig.scalingPolicies.member.predefinedMetricType")
			}
			if *p.PredefinedMetricType != metricCPU {
				return nil, validationError(*p.PredefinedMetricType, "capacityProviderScalingConfig.scalingPolicies.member.predefinedMetricType", "Member must satisfy enum value set: ["+metricCPU+"]")
			}
			if p.TargetValue == nil {
				return nil, nullError("capacityProviderScalingConfig.scalingPolicies.member.targetValue")
			}
			if v := *p.TargetValue; v < 0 || v > 100 {
				return nil, validationError(fmt.Sprint(v), "capacityProviderScalingConfig.scalingPolicies.member.targetValue", "Member must have value between 0 and 100")
			}
			out.ScalingPolicies = append(out.ScalingPolicies, registry.TargetTrackingScalingPolicy{PredefinedMetricType: *p.PredefinedMetricType, TargetValue: *p.TargetValue})
		}
	}
	mode := out.ScalingMode
	if mode == "" {
		mode = "Auto"
	}
	if mode == "Manual" && len(out.ScalingPolicies) == 0 {
		return nil, awserr.InvalidParameter("ScalingPolicies must be specified when ScalingMode is Manual.")
	}
	if mode == "Auto" && len(out.ScalingPolicies) > 0 {
		return nil, awserr.InvalidParameter("ScalingPolicies can only be specified when ScalingMode is Manual.")
	}
	return out, nil
}

func validateTags(tags map[string]string, field string, limit int) error {
	if len(tags) > limit {
		return awserr.InvalidParameter("Number of tags exceeds resource tag limit.")
	}
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 {
			return validationError(k, field, "Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]")
		}
		if len(v) > 256 {
			return validationError(v, field, "Map value must satisfy constraint: [Member must have length less than or equal to 256]")
		}
	}
	return nil
}

func validatePropagateTags(p *registry.PropagateTags) (*registry.PropagateTags, error) {
	if p == nil {
		return nil, nil
	}
	switch p.Mode {
	case "", "None", "Explicit":
	default:
		return nil, validationError(p.Mode, "propagateTags.mode", "Member must satisfy enum value set: [None, Explicit]")
	}
	if len(p.ExplicitTags) > 40 {
		return nil, validationError(itoa(len(p.ExplicitTags)), "propagateTags.explicitTags", "Member must have length less than or equal to 40")
	}
	if err := validateTags(p.ExplicitTags, "propagateTags.explicitTags", 40); err != nil {
		return nil, err
	}
	if p.Mode == "None" && len(p.ExplicitTags) > 0 {
		return nil, awserr.InvalidParameter("ExplicitTags can only be specified when the PropagateTags Mode is Explicit.")
	}
	c := *p
	return &c, nil
}

func validateTelemetry(t *registry.CapacityProviderTelemetryConfig) (*registry.CapacityProviderTelemetryConfig, error) {
	if t == nil || t.LoggingConfig == nil {
		return t, nil
	}
	lc := t.LoggingConfig
	switch lc.SystemLogLevel {
	case "", "DEBUG", "INFO", "WARN":
	default:
		return nil, validationError(lc.SystemLogLevel, "telemetryConfig.loggingConfig.systemLogLevel", "Member must satisfy enum value set: [DEBUG, INFO, WARN]")
	}
	if lc.LogGroup != "" && (len(lc.LogGroup) > 512 || !logGroupRE.MatchString(lc.LogGroup)) {
		return nil, patternError(lc.LogGroup, "telemetryConfig.loggingConfig.logGroup", logGroupPattern)
	}
	c := *lc
	return &registry.CapacityProviderTelemetryConfig{LoggingConfig: &c}, nil
}

type capacityProviderResponse struct {
	CapacityProvider *registry.CapacityProvider `json:"CapacityProvider"`
}

func (a *api) createCapacityProvider(w http.ResponseWriter, r *http.Request) error {
	b, err := readBody(r, maxSmallRequestBytes, func() error {
		return requestEntityTooLarge("Request must be smaller than %d bytes for the operation", maxSmallRequestBytes)
	})
	if err != nil {
		return err
	}
	req, err := a.parseCreateCapacityProvider(b)
	if err != nil {
		return err
	}
	cp, err := a.reg.CreateCapacityProvider(r.Context(), registry.CreateCapacityProviderInput{Name: req.Name, Provider: req.Provider, Tags: req.Tags})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, &capacityProviderResponse{CapacityProvider: cp})
}

func (a *api) capacityProviderRef(r *http.Request) (string, error) {
	return a.parseCapacityProviderName(r.PathValue("cp"), "capacityProviderName")
}

func (a *api) getCapacityProvider(w http.ResponseWriter, r *http.Request) error {
	name, err := a.capacityProviderRef(r)
	if err != nil {
		return err
	}
	cp, err := a.reg.GetCapacityProvider(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &capacityProviderResponse{CapacityProvider: cp})
}

type listCapacityProvidersResponse struct {
	CapacityProviders []*registry.CapacityProvider `json:"CapacityProviders"`
	NextMarker        string                       `json:"NextMarker,omitempty"`
}

func (a *api) listCapacityProviders(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	state, hasState := q["State"]
	if hasState {
		switch first(state) {
		case registry.CapacityProviderPending, registry.CapacityProviderActive, registry.CapacityProviderFailed, registry.CapacityProviderDeleting:
		default:
			return validationError(first(state), "state", "Member must satisfy enum value set: [Pending, Active, Failed, Deleting]")
		}
	}
	maxItems, err := parseMaxItems(q.Get("MaxItems"), maxCapacityProviderPageSize, maxCapacityProviderPageSize)
	if err != nil {
		return err
	}
	all, err := a.reg.ListCapacityProviders(r.Context())
	if err != nil {
		return err
	}
	cps := all[:0:0]
	for _, cp := range all {
		if !hasState || cp.State == first(state) {
			cps = append(cps, cp)
		}
	}
	page, next, err := paginate(cps, func(cp *registry.CapacityProvider) string { return cp.Name() }, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listCapacityProvidersResponse{CapacityProviders: page, NextMarker: next}
	if out.CapacityProviders == nil {
		out.CapacityProviders = []*registry.CapacityProvider{}
	}
	return writeJSON(w, http.StatusOK, &out)
}

// updateCapacityProviderRequest is the body of UpdateCapacityProvider. The settings
// fixed at creation are decoded only to refuse them.
type updateCapacityProviderRequest struct {
	CapacityProviderScalingConfig *scalingConfigRequest                     `json:"CapacityProviderScalingConfig"`
	PropagateTags                 *registry.PropagateTags                   `json:"PropagateTags"`
	TelemetryConfig               *registry.CapacityProviderTelemetryConfig `json:"TelemetryConfig"`

	VpcConfig            json.RawMessage `json:"VpcConfig"`
	PermissionsConfig    json.RawMessage `json:"PermissionsConfig"`
	InstanceRequirements json.RawMessage `json:"InstanceRequirements"`
	KmsKeyArn            json.RawMessage `json:"KmsKeyArn"`
}

func given(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }

// parseUpdateCapacityProvider decodes and validates an UpdateCapacityProvider body.
func parseUpdateCapacityProvider(body []byte) (*registry.CapacityProviderUpdate, error) {
	var req updateCapacityProviderRequest
	if err := unmarshalBody(body, &req); err != nil {
		return nil, err
	}
	for field, m := range map[string]json.RawMessage{
		"VpcConfig": req.VpcConfig, "PermissionsConfig": req.PermissionsConfig,
		"InstanceRequirements": req.InstanceRequirements, "KmsKeyArn": req.KmsKeyArn,
	} {
		if given(m) {
			return nil, awserr.InvalidParameter("%s cannot be changed after a capacity provider is created. Only CapacityProviderScalingConfig, PropagateTags and TelemetryConfig can be updated.", field)
		}
	}
	var u registry.CapacityProviderUpdate
	var err error
	if req.CapacityProviderScalingConfig != nil {
		if u.ScalingConfig, err = validateScalingConfig(req.CapacityProviderScalingConfig, true); err != nil {
			return nil, err
		}
	}
	if u.PropagateTags, err = validatePropagateTags(req.PropagateTags); err != nil {
		return nil, err
	}
	if u.TelemetryConfig, err = validateTelemetry(req.TelemetryConfig); err != nil {
		return nil, err
	}
	return &u, nil
}

func (a *api) updateCapacityProvider(w http.ResponseWriter, r *http.Request) error {
	name, err := a.capacityProviderRef(r)
	if err != nil {
		return err
	}
	b, err := readBody(r, maxSmallRequestBytes, func() error {
		return requestEntityTooLarge("Request must be smaller than %d bytes for the operation", maxSmallRequestBytes)
	})
	if err != nil {
		return err
	}
	u, err := parseUpdateCapacityProvider(b)
	if err != nil {
		return err
	}
	cp, err := a.reg.UpdateCapacityProvider(r.Context(), name, *u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, &capacityProviderResponse{CapacityProvider: cp})
}

func (a *api) deleteCapacityProvider(w http.ResponseWriter, r *http.Request) error {
	name, err := a.capacityProviderRef(r)
	if err != nil {
		return err
	}
	cp, err := a.reg.DeleteCapacityProvider(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, &capacityProviderResponse{CapacityProvider: cp})
}

type functionVersionItem struct {
	FunctionArn string `json:"FunctionArn"`
	State       string `json:"State"`
}

type listFunctionVersionsByCPResponse struct {
	CapacityProviderArn string                `json:"CapacityProviderArn"`
	FunctionVersions    []functionVersionItem `json:"FunctionVersions"`
	NextMarker          string                `json:"NextMarker,omitempty"`
}

func (a *api) listFunctionVersionsByCapacityProvider(w http.ResponseWriter, r *http.Request) error {
	name, err := a.capacityProviderRef(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxItems, err := parseMaxItems(q.Get("MaxItems"), maxCapacityProviderPageSize, maxCapacityProviderPageSize)
	if err != nil {
		return err
	}
	vs, err := a.reg.ListFunctionVersionsByCapacityProvider(r.Context(), name)
	if err != nil {
		return err
	}
	arn := func(v *registry.Version) string {
		if v.Version == registry.Latest {
			return v.FunctionArn + ":" + registry.Latest
		}
		return v.FunctionArn
	}
	page, next, err := paginate(vs, functionVersionOrder, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listFunctionVersionsByCPResponse{CapacityProviderArn: a.reg.CapacityProviderARN(name),
		FunctionVersions: make([]functionVersionItem, 0, len(page)), NextMarker: next}
	for _, v := range page {
		state, _, _ := a.reg.VersionState(v)
		out.FunctionVersions = append(out.FunctionVersions, functionVersionItem{FunctionArn: arn(v), State: state})
	}
	return writeJSON(w, http.StatusOK, &out)
}
