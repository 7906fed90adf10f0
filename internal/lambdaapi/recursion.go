package lambdaapi

import (
	"net/http"
	"regexp"

	"github.com/shoal-dev/shoal/internal/registry"
)

// Recursive loop detection (API 2024-08-31): whether Lambda stops a function it
// finds invoked in a recursive loop (Terminate, the default) or lets it run
// (Allow). shoal records the setting; it has no event sources that could loop.

const unqualifiedFunctionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)`

var unqualifiedName = nameShape{
	re:      regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:)?(?P<account>\d{12}:)?(?:function:)?(?P<name>[a-zA-Z0-9_-]+)(?P<qualifier>)$`),
	pattern: unqualifiedFunctionNamePattern,
	max:     140,
}

type recursionConfig struct {
	RecursiveLoop *string `json:"RecursiveLoop"`
}

// recursionRef reads the {name} of a recursion config operation, which takes an
// unqualified name.
func (a *api) recursionRef(r *http.Request, v *violations) functionRef {
	raw := r.PathValue("name")
	if isPlainName(raw) {
		return functionRef{Name: raw}
	}
	return matchName(raw, unqualifiedName, v)
}

func (a *api) putFunctionRecursionConfig(w http.ResponseWriter, r *http.Request) error {
	var v violations
	ref := a.recursionRef(r, &v)
	var req recursionConfig
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	switch {
	case req.RecursiveLoop == nil:
		v.addRaw("Value null at 'recursiveLoop' failed to satisfy constraint: Member must not be null")
	case *req.RecursiveLoop != registry.RecursiveLoopAllow && *req.RecursiveLoop != registry.RecursiveLoopTerminate:
		v.add(*req.RecursiveLoop, "recursiveLoop", "Member must satisfy enum value set: [Terminate, Allow]")
	}
	if err := v.err(); err != nil {
		return err
	}
	if err := a.checkOwner(ref); err != nil {
		return err
	}
	if err := a.reg.PutFunctionRecursionConfig(r.Context(), ref.Name, *req.RecursiveLoop); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &req)
}

func (a *api) getFunctionRecursionConfig(w http.ResponseWriter, r *http.Request) error {
	var v violations
	ref := a.recursionRef(r, &v)
	if err := v.err(); err != nil {
		return err
	}
	if err := a.checkOwner(ref); err != nil {
		return err
	}
	loop, err := a.reg.GetFunctionRecursionConfig(r.Context(), ref.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, &recursionConfig{RecursiveLoop: &loop})
}
