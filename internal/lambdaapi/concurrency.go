package lambdaapi

import (
	"net/http"
	"strconv"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// refuseManaged refuses an operation that Managed Instances functions do not
// support, whose environments are set by their scaling config instead.
func (a *api) refuseManaged(r *http.Request, function, what string) error {
	fn, err := a.reg.GetFunction(r.Context(), function)
	if err != nil || fn.Latest.ManagedInstances() == nil {
		return nil // the operation reports a missing function its own way
	}
	return awserr.InvalidParameter("%s is not supported for functions that use a capacity provider; use PutFunctionScalingConfig to set their execution environments.", what)
}

// onlyFunctions refuses a qualified name for operations on the function itself.
func onlyFunctions(ref functionRef) error {
	if ref.ARNQualifier != "" {
		return awserr.InvalidParameter("This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.")
	}
	return nil
}

func (a *api) putFunctionConcurrency(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	var req concurrencyBody
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.ReservedConcurrentExecutions == nil {
		return nullError("reservedConcurrentExecutions")
	}
	n := *req.ReservedConcurrentExecutions
	if n < 0 {
		return validationError(itoa(n), "reservedConcurrentExecutions", "Member must have value greater than or equal to 0")
	}
	if err := onlyFunctions(ref); err != nil {
		if _, gerr := a.reg.GetFunction(r.Context(), ref.Name); gerr != nil {
			return awserr.NotFound("Function not found: %s", a.reg.FunctionARN(ref.Name, registry.Latest))
		}
		return err
	}
	if err := a.refuseManaged(r, ref.Name, "Reserved concurrency"); err != nil {
		return err
	}
	got, err := a.reg.PutFunctionConcurrency(r.Context(), ref.Name, n, a.limits)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &concurrencyBody{ReservedConcurrentExecutions: &got})
}

func (a *api) getFunctionConcurrency(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	if err := onlyFunctions(ref); err != nil {
		return err
	}
	n, err := a.reg.GetFunctionConcurrency(r.Context(), ref.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &concurrencyBody{ReservedConcurrentExecutions: n})
}

func (a *api) deleteFunctionConcurrency(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.unqualifiedRef(r)
	if err != nil {
		return err
	}
	if err := onlyFunctions(ref); err != nil {
		return err
	}
	if err := a.reg.DeleteFunctionConcurrency(r.Context(), ref.Name); err != nil {
		return err
	}
	return writeNoContent(w)
}

type accountLimit struct {
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int   `json:"ConcurrentExecutions"`
	UnreservedConcurrentExecutions int   `json:"UnreservedConcurrentExecutions"`
}

type accountUsage struct {
	TotalCodeSize int64 `json:"TotalCodeSize"`
	FunctionCount int   `json:"FunctionCount"`
}

type accountSettings struct {
	AccountLimit accountLimit `json:"AccountLimit"`
	AccountUsage accountUsage `json:"AccountUsage"`
}

func (a *api) getAccountSettings(w http.ResponseWriter, r *http.Request) error {
	reserved, err := a.reg.SumReservedConcurrency(r.Context())
	if err != nil {
		return err
	}
	count, size := a.reg.AccountUsage(r.Context())
	return writeJSON(w, http.StatusOK, &accountSettings{
		AccountLimit: accountLimit{
			TotalCodeSize:                  80530636800,
			CodeSizeUnzipped:               a.cfg.MaxUnzippedCodeBytes,
			CodeSizeZipped:                 a.cfg.MaxZippedCodeBytes,
			ConcurrentExecutions:           a.cfg.AccountConcurrencyLimit,
			UnreservedConcurrentExecutions: a.cfg.AccountConcurrencyLimit - reserved,
		},
		AccountUsage: accountUsage{TotalCodeSize: size, FunctionCount: count},
	})
}

func itoa(n int) string { return strconv.Itoa(n) }
