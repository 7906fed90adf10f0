package lambdaapi

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// tagFunction reads the {arn} of a tag operation: a function's unqualified ARN.
func (a *api) tagFunction(r *http.Request) (string, error) {
	arn := r.PathValue("arn")
	m := tagResourceRE.FindStringSubmatch(arn)
	if m == nil {
		if tagOtherResourceRE.MatchString(arn) {
			return "", awserr.InvalidParameter("Tagging of this resource type is not supported by shoal.")
		}
		return "", patternError(arn, "resource", tagResourcePattern)
	}
	if m[tagResourceRE.SubexpIndex("region")] != a.cfg.Region {
		return "", awserr.NotFound("Functions from '%s' are not reachable in this region ('%s')", m[tagResourceRE.SubexpIndex("region")], a.cfg.Region)
	}
	if m[tagResourceRE.SubexpIndex("account")] != a.cfg.AccountID {
		return "", awserr.NotFound("Function not found: %s", arn)
	}
	if m[tagResourceRE.SubexpIndex("qualifier")] != "" {
		return "", awserr.InvalidParameter("Tags on function aliases and versions are not supported. Please specify a function ARN.")
	}
	return m[tagResourceRE.SubexpIndex("name")], nil
}

type tagsBody struct {
	Tags map[string]string `json:"Tags"`
}

func (a *api) tagResource(w http.ResponseWriter, r *http.Request) error {
	name, err := a.tagFunction(r)
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
	fn, err := a.reg.GetFunction(r.Context(), name)
	if err != nil {
		return err
	}
	merged := len(fn.Tags)
	for k := range req.Tags {
		if _, ok := fn.Tags[k]; !ok {
			merged++
		}
	}
	if merged > 50 {
		return awserr.InvalidParameter("Number of tags exceeds resource tag limit.")
	}
	if err := a.reg.TagFunction(r.Context(), name, req.Tags); err != nil {
		return err
	}
	return writeNoContent(w)
}

func (a *api) untagResource(w http.ResponseWriter, r *http.Request) error {
	name, err := a.tagFunction(r)
	if err != nil {
		return err
	}
	keys := r.URL.Query()["tagKeys"]
	if len(keys) == 0 {
		return nullError("tagKeys")
	}
	if err := a.reg.UntagFunction(r.Context(), name, keys); err != nil {
		return err
	}
	return writeNoContent(w)
}

func (a *api) listTags(w http.ResponseWriter, r *http.Request) error {
	name, err := a.tagFunction(r)
	if err != nil {
		return err
	}
	fn, err := a.reg.GetFunction(r.Context(), name)
	if err != nil {
		return err
	}
	tags := fn.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return writeJSON(w, http.StatusOK, &tagsBody{Tags: tags})
}
