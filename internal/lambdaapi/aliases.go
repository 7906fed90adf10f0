package lambdaapi

import (
	"fmt"
	"net/http"

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
	if len(name) > 128 {
		return validationError(name, "name", "Member must have length less than or equal to 128")
	}
	if !aliasNameRE.MatchString(name) || isVersion(name) {
		return patternError(name, "name", aliasNamePattern)
	}
	return nil
}

// validate checks the alias fields given; weighted routing is refused.
func (req *aliasRequest) validate() error {
	if req.FunctionVersion != nil {
		fv := *req.FunctionVersion
		if len(fv) > 1024 || !functionVersionRE.MatchString(fv) {
			return patternError(fv, "functionVersion", functionVersionPattern)
		}
	}
	if req.Description != nil && len(*req.Description) > 256 {
		return validationError(*req.Description, "description", "Member must have length less than or equal to 256")
	}
	if req.RoutingConfig != nil && len(req.RoutingConfig.AdditionalVersionWeights) > 0 {
		for k, w := range req.RoutingConfig.AdditionalVersionWeights {
			if w < 0 || w > 1 {
				return validationError(fmt.Sprintf("{%s=%v}", k, w), "routingConfig.additionalVersionWeights",
					"Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]")
			}
		}
		return awserr.InvalidParameter("Weighted aliases (RoutingConfig.AdditionalVersionWeights) are not supported yet: point the alias at a single version.")
	}
	return nil
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
	if err := validateAliasName(*req.Name); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	al := registry.Alias{Name: *req.Name, FunctionVersion: *req.FunctionVersion}
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
	if err := req.validate(); err != nil {
		return err
	}
	out, err := a.reg.UpdateAlias(r.Context(), ref.Name, name, req.RevisionId, func(al *registry.Alias) error {
		if req.FunctionVersion != nil {
			al.FunctionVersion = *req.FunctionVersion
		}
		if req.Description != nil {
			al.Description = *req.Description
		}
		return nil
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
