package lambdaapi

import (
	"net/http"
	"regexp"

	"github.com/shoal-dev/shoal/internal/awserr"
)

var tagCapacityProviderRE = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d):(?P<account>\d{12}):capacity-provider:(?P<name>[a-zA-Z0-9_-]+)$`)

// tagTarget is the resource of a tag operation: a function or a capacity provider.
type tagTarget struct {
	function         string
	capacityProvider string
}

// tagResource reads the {arn} of a tag operation: a function's unqualified ARN or a
// capacity provider's ARN.
func (a *api) tagTarget(r *http.Request) (tagTarget, error) {
	arn := r.PathValue("arn")
	if m := tagCapacityProviderRE.FindStringSubmatch(arn); m != nil {
		if m[tagCapacityProviderRE.SubexpIndex("region")] != a.cfg.Region || m[tagCapacityProviderRE.SubexpIndex("account")] != a.cfg.AccountID {
			return tagTarget{}, awserr.NotFound("Capacity provider not found: %s", arn)
		}
		return tagTarget{capacityProvider: m[tagCapacityProviderRE.SubexpIndex("name")]}, nil
	}
	m := tagResourceRE.FindStringSubmatch(arn)
	if m == nil {
		if tagOtherResourceRE.MatchString(arn) {
			return tagTarget{}, awserr.InvalidParameter("Tagging of this resource type is not supported by shoal.")
		}
		return tagTarget{}, patternError(arn, "resource", tagResourcePattern)
	}
	if m[tagResourceRE.SubexpIndex("region")] != a.cfg.Region {
		return tagTarget{}, awserr.NotFound("Functions from '%s' are not reachable in this region ('%s')", m[tagResourceRE.SubexpIndex("region")], a.cfg.Region)
	}
	if m[tagResourceRE.SubexpIndex("account")] != a.cfg.AccountID {
		return tagTarget{}, awserr.NotFound("Function not found: %s", arn)
	}
	if m[tagResourceRE.SubexpIndex("qualifier")] != "" {
		return tagTarget{}, awserr.InvalidParameter("Tags on function aliases and versions are not supported. Please specify a function ARN.")
	}
	return tagTarget{function: m[tagResourceRE.SubexpIndex("name")]}, nil
}

// tags returns the target's current tags.
func (a *api) tags(r *http.Request, t tagTarget) (map[string]string, error) {
	if t.capacityProvider != "" {
		return a.reg.CapacityProviderTags(r.Context(), t.capacityProvider)
	}
	fn, err := a.reg.GetFunction(r.Context(), t.function)
	if err != nil {
		return nil, err
	}
	return fn.Tags, nil
}

type tagsBody struct {
	Tags map[string]string `json:"Tags"`
}

func (a *api) tagResource(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tagTarget(r)
	if err != nil {
		return err
	}
	var req tagsBody
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Tags) == 0 {
		return awserr.InvalidParameter("An error occurred and the request cannot be processed.")
	}
	current, err := a.tags(r, t)
	if err != nil {
		return err
	}
	merged := len(current)
	for k := range req.Tags {
		if _, ok := current[k]; !ok {
			merged++
		}
	}
	if merged > 50 {
		return awserr.InvalidParameter("Number of tags exceeds resource tag limit.")
	}
	if t.capacityProvider != "" {
		err = a.reg.TagCapacityProvider(r.Context(), t.capacityProvider, req.Tags)
	} else {
		err = a.reg.TagFunction(r.Context(), t.function, req.Tags)
	}
	if err != nil {
		return err
	}
	return writeNoContent(w)
}

func (a *api) untagResource(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tagTarget(r)
	if err != nil {
		return err
	}
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return nullError("tagKeys")
	}
	if t.capacityProvider != "" {
		err = a.reg.UntagCapacityProvider(r.Context(), t.capacityProvider, keys)
	} else {
		err = a.reg.UntagFunction(r.Context(), t.function, keys)
	}
	if err != nil {
		return err
	}
	return writeNoContent(w)
}

func (a *api) listTags(w http.ResponseWriter, r *http.Request) error {
	t, err := a.tagTarget(r)
	if err != nil {
		return err
	}
	tags, err := a.tags(r, t)
	if err != nil {
		return err
	}
	if tags == nil {
		tags = map[string]string{}
	}
	return writeJSON(w, http.StatusOK, &tagsBody{Tags: tags})
}
