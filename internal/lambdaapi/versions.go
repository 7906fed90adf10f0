package lambdaapi

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/registry"
)

type publishVersionRequest struct {
	CodeSha256  string  `json:"CodeSha256"`
	Description string  `json:"Description"`
	RevisionId  string  `json:"RevisionId"`
	PublishTo   *string `json:"PublishTo"`
}

func (a *api) publishVersion(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	end, err := a.reg.BeginUpdate(ref.Name)
	if err != nil {
		return err
	}
	defer end()
	var req publishVersionRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.Description) > 256 {
		return validationError(req.Description, "description", "Member must have length less than or equal to 256")
	}
	if err := validatePublishTo(req.PublishTo); err != nil {
		return err
	}
	v, err := a.reg.PublishVersionTo(r.Context(), ref.Name, deref(req.PublishTo), req.CodeSha256, req.Description, req.RevisionId)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, a.shown(v))
}

type listVersionsResponse struct {
	Versions   []*registry.Version `json:"Versions"`
	NextMarker string              `json:"NextMarker,omitempty"`
}

func (a *api) listVersions(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 10000)
	if err != nil {
		return err
	}
	vs, err := a.reg.ListVersions(r.Context(), ref.Name)
	if err != nil {
		return err
	}
	page, next, err := paginate(vs, func(v *registry.Version) string { return versionOrder(v.Version) }, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listVersionsResponse{Versions: make([]*registry.Version, 0, len(page)), NextMarker: next}
	for _, v := range page {
		out.Versions = append(out.Versions, listed(v, true))
	}
	return writeJSON(w, http.StatusOK, &out)
}
