package lambdaapi

import (
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

type aliasRequest struct {
	Name            *string                 `json:"Name"`
	FunctionVersion *string                 `json:"FunctionVersion"`
	Description     *string                 `json:"Description"`
	RoutingConfig   *registry.RoutingConfig `json:"RoutingConfig"`
	RevisionId      string                  `json:"RevisionId"`
}

func validateAliasName(name string) error {
	var v violations
	checkAliasName(name, &v)
	if err := v.err(); err != nil {
		return err
	}
	return nil
}

// checkAliasName records the constraints an alias name fails.
func checkAliasName(name string, v *violations) {
	if len(name) > 128 {
		v.add(name, "name", "Member must have length less than or equal to 128")
	}
	if !aliasNameRE.MatchString(name) || isVersion(name) {
		v.add(name, "name", "Member must satisfy regular expression pattern: "+aliasNamePattern)
	}
}

// validate checks the alias fields given against the request's shape.
func (req *aliasRequest) validate(v *violations) {
	if req.FunctionVersion != nil {
		fv := *req.FunctionVersion
		if len(fv) > 1024 || !functionVersionRE.MatchString(fv) {
			v.add(fv, "functionVersion", "Member must satisfy regular expression pattern: "+functionVersionPattern)
		}
	}
	if req.Description != nil && len(*req.Description) > 256 {
		v.add(*req.Description, "description", "Member must have length less than or equal to 256")
	}
	if req.RoutingConfig == nil {
		return
	}
	weights := req.RoutingConfig.AdditionalVersionWeights
	shown := showWeights(weights)
	for k := range weights {
		if len(k) < 1 || len(k) > 1024 || !isVersion(k) {
			v.add(shown, "routingConfig.additionalVersionWeights", "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]")
			break
		}
	}
	for _, w := range weights {
		if w < 0 || w > 1 || math.IsNaN(w) {
			v.add(shown, "routingConfig.additionalVersionWeights", "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]")
			break
		}
	}
}

// showWeights prints a weights map as Lambda's messages do: {2=0.5}.
func showWeights(weights map[string]float64) string {
	keys := make([]string, 0, len(weights))
	for k := range weights {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		w := strconv.FormatFloat(weights[k], 'f', -1, 64)
		if !strings.ContainsAny(w, ".eEN") {
			w += ".0"
		}
		b.WriteString(k + "=" + w)
	}
	b.WriteByte('}')
	return b.String()
}

// checkRouting applies Lambda's rules on a routing configuration for an alias of
// version: one additional version at most, another than the alias's, and none for
// an alias of $LATEST.
func checkRouting(version string, rc *registry.RoutingConfig) error {
	if rc == nil || len(rc.AdditionalVersionWeights) == 0 {
		return nil
	}
	if len(rc.AdditionalVersionWeights) > 1 {
		return awserr.InvalidParameter("Number of items in AdditionalVersionWeights cannot be greater than 1")
	}
	if version == registry.Latest {
		return awserr.InvalidParameterUntyped("$LATEST is not supported for an alias pointing to more than 1 version")
	}
	if _, ok := rc.AdditionalVersionWeights[version]; ok {
		return awserr.InvalidParameter("Invalid function version %s. Function version %s is already included in routing configuration.", version, version)
	}
	return nil
}

// routing is the stored form of a request's RoutingConfig: nil for no weights.
func routing(rc *registry.RoutingConfig) *registry.RoutingConfig {
	if rc == nil || len(rc.AdditionalVersionWeights) == 0 {
		return nil
	}
	return &registry.RoutingConfig{AdditionalVersionWeights: rc.AdditionalVersionWeights}
}

func (a *api) createAlias(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	var req aliasRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return nullError("name")
	}
	if req.FunctionVersion == nil {
		return nullError("functionVersion")
	}
	var v violations
	checkAliasName(*req.Name, &v)
	req.validate(&v)
	if err := v.err(); err != nil {
		return err
	}
	if err := checkRouting(*req.FunctionVersion, req.RoutingConfig); err != nil {
		return err
	}
	al := registry.Alias{Name: *req.Name, FunctionVersion: *req.FunctionVersion, RoutingConfig: routing(req.RoutingConfig)}
	if req.Description != nil {
		al.Description = *req.Description
	}
	out, err := a.reg.CreateAlias(r.Context(), ref.Name, al)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, out)
}

func (a *api) aliasName(r *http.Request) (string, error) {
	name := r.PathValue("alias")
	if err := validateAliasName(name); err != nil {
		return "", err
	}
	return name, nil
}

func (a *api) getAlias(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	name, err := a.aliasName(r)
	if err != nil {
		return err
	}
	al, err := a.reg.GetAlias(r.Context(), ref.Name, name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, al)
}

func (a *api) updateAlias(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	name, err := a.aliasName(r)
	if err != nil {
		return err
	}
	var req aliasRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	var v violations
	req.validate(&v)
	if err := v.err(); err != nil {
		return err
	}
	out, err := a.reg.UpdateAlias(r.Context(), ref.Name, name, req.RevisionId, func(al *registry.Alias) error {
		if req.FunctionVersion != nil {
			al.FunctionVersion = *req.FunctionVersion
		}
		if req.Description != nil {
			al.Description = *req.Description
		}
		if req.RoutingConfig != nil {
			al.RoutingConfig = routing(req.RoutingConfig)
		}
		return checkRouting(al.FunctionVersion, al.RoutingConfig)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *api) deleteAlias(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	name, err := a.aliasName(r)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteAlias(r.Context(), ref.Name, name); err != nil {
		return err
	}
	return writeNoContent(w)
}

type listAliasesResponse struct {
	Aliases    []*registry.Alias `json:"Aliases"`
	NextMarker string            `json:"NextMarker,omitempty"`
}

func (a *api) listAliases(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 10000)
	if err != nil {
		return err
	}
	fv := q.Get("FunctionVersion")
	if fv != "" && !functionVersionRE.MatchString(fv) {
		return patternError(fv, "functionVersion", functionVersionPattern)
	}
	als, err := a.reg.ListAliases(r.Context(), ref.Name, fv)
	if err != nil {
		return err
	}
	page, next, err := paginate(als, func(al *registry.Alias) string { return al.Name }, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &listAliasesResponse{Aliases: page, NextMarker: next})
}
