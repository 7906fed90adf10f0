package lambdaapi

import (
	"net/http"

	"github.com/shoal-dev/shoal/internal/registry"
)

type provisionedRequest struct {
	ProvisionedConcurrentExecutions *int `json:"ProvisionedConcurrentExecutions"`
}

type provisionedResponse struct {
	FunctionArn                              string `json:"FunctionArn,omitempty"`
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	StatusReason                             string `json:"StatusReason,omitempty"`
	LastModified                             string `json:"LastModified"`
}

func (a *api) provisionedResponse(c *registry.ProvisionedConcurrencyConfig, withARN bool) *provisionedResponse {
	out := &provisionedResponse{
		RequestedProvisionedConcurrentExecutions: c.Requested,
		AvailableProvisionedConcurrentExecutions: c.Available,
		AllocatedProvisionedConcurrentExecutions: c.Allocated,
		Status:                                   c.Status,
		StatusReason:                             c.StatusReason,
		LastModified:                             c.LastModified,
	}
	if withARN {
		out.FunctionArn = a.reg.FunctionARN(c.FunctionName, c.Qualifier)
	}
	return out
}

// provisionedRef reads the function and its required Qualifier.
func (a *api) provisionedRef(r *http.Request) (functionRef, error) {
	ref, err := a.functionRef(r)
	if err != nil {
		return ref, err
	}
	if ref.Qualifier == "" {
		return ref, nullError("qualifier")
	}
	return ref, nil
}

func (a *api) putProvisionedConcurrency(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.provisionedRef(r)
	if err != nil {
		return err
	}
	var req provisionedRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ProvisionedConcurrentExecutions == nil {
		return nullError("provisionedConcurrentExecutions")
	}
	n := *req.ProvisionedConcurrentExecutions
	if n < 1 {
		return validationError(itoa(n), "provisionedConcurrentExecutions", "Member must have value greater than or equal to 1")
	}
	if err := a.refuseManaged(r, ref.Name, "Provisioned Concurrency"); err != nil {
		return err
	}
	c, err := a.reg.PutProvisionedConcurrency(r.Context(), ref.Name, ref.Qualifier, n, a.limits)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, a.provisionedResponse(c, false))
}

type listProvisionedResponse struct {
	ProvisionedConcurrencyConfigs []*provisionedResponse `json:"ProvisionedConcurrencyConfigs"`
	NextMarker                    string                 `json:"NextMarker,omitempty"`
}

func (a *api) getOrListProvisionedConcurrency(w http.ResponseWriter, r *http.Request) error {
	if _, ok := queryValue(r, "List"); ok {
		return a.listProvisionedConcurrency(w, r)
	}
	ref, err := a.provisionedRef(r)
	if err != nil {
		return err
	}
	c, err := a.reg.GetProvisionedConcurrency(r.Context(), ref.Name, ref.Qualifier)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a.provisionedResponse(c, false))
}

func (a *api) listProvisionedConcurrency(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if l := q.Get("List"); l != "ALL" {
		return validationError(l, "list", "Member must satisfy enum value set: [ALL]")
	}
	maxItems, err := parseMaxItems(q.Get("MaxItems"), 50, 50)
	if err != nil {
		return err
	}
	cs, err := a.reg.ListProvisionedConcurrencyByFunction(r.Context(), ref.Name)
	if err != nil {
		return err
	}
	page, next, err := paginate(cs, func(c registry.ProvisionedConcurrencyConfig) string { return c.Qualifier }, q.Get("Marker"), maxItems)
	if err != nil {
		return err
	}
	out := listProvisionedResponse{ProvisionedConcurrencyConfigs: make([]*provisionedResponse, 0, len(page)), NextMarker: next}
	for i := range page {
		out.ProvisionedConcurrencyConfigs = append(out.ProvisionedConcurrencyConfigs, a.provisionedResponse(&page[i], true))
	}
	return writeJSON(w, http.StatusOK, &out)
}

func (a *api) deleteProvisionedConcurrency(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.provisionedRef(r)
	if err != nil {
		return err
	}
	if err := a.reg.DeleteProvisionedConcurrency(r.Context(), ref.Name, ref.Qualifier); err != nil {
		return err
	}
	return writeNoContent(w)
}
