package lambdaapi

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Lambda's patterns, as its validation messages print them.
const (
	functionNamePattern       = `(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_\.]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?`
	createFunctionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?`
	qualifierPattern          = `\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+`
	aliasNamePattern          = `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`
	functionVersionPattern    = `(\$LATEST(\.PUBLISHED)?|[0-9]+)`
	rolePattern               = `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
	tagResourcePattern        = `arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)`
)

// The same patterns for Go's regexp (RE2: '-' last in classes, no look-ahead).
var (
	functionNameRE       = regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:)?(?P<account>\d{12}:)?(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$`)
	createFunctionNameRE = regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:)?(?P<account>\d{12}:)?(?:function:)?(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$`)
	qualifierRE          = regexp.MustCompile(`^(?:\$(?:LATEST(?:\.PUBLISHED)?)|[a-zA-Z0-9_$-]+)$`)
	aliasNameRE          = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	functionVersionRE    = regexp.MustCompile(`^(?:\$LATEST(?:\.PUBLISHED)?|[0-9]+)$`)
	roleRE               = regexp.MustCompile(`^arn:(?:aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@_/-]+$`)
	tagResourceRE        = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d):(?P<account>\d{12}):function:(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9_-]+))?$`)
	tagOtherResourceRE   = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:lambda:(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:\d{12}:(?:layer:[a-zA-Z0-9_-]+|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F-]{36}|capacity-provider:[a-zA-Z0-9_-]+)$`)
	regionRE             = regexp.MustCompile(`^(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d$`)
)

// validationError is Lambda's ValidationException for one constraint.
func validationError(value, field, constraint string) *awserr.Error {
	var v violations
	v.add(value, field, constraint)
	return v.err()
}

func nullError(field string) *awserr.Error {
	return awserr.Validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

func patternError(value, field, pattern string) *awserr.Error {
	return validationError(value, field, "Member must satisfy regular expression pattern: "+pattern)
}

// violations collects the constraints a request fails, as Lambda's request
// validation does: it checks every member and lists each failure in one
// ValidationException.
type violations []string

// add records that value at field fails constraint.
func (v *violations) add(value, field, constraint string) {
	*v = append(*v, fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint))
}

// addRaw records a failure worded otherwise (e.g. a map's keys).
func (v *violations) addRaw(s string) { *v = append(*v, s) }

// err is the ValidationException listing the failures, or nil.
func (v violations) err() *awserr.Error {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return awserr.Validation("1 validation error detected: %s", v[0])
	}
	return awserr.Validation("%d validation errors detected: %s", len(v), strings.Join(v, "; "))
}

// nameShape is the constraint on an operation's FunctionName: GetFunction,
// DeleteFunction, Invoke and the other reads take a namespaced name (up to 256
// characters, dots, $LATEST.PUBLISHED), CreateFunction a plain one.
type nameShape struct {
	re      *regexp.Regexp
	pattern string
	max     int
}

var (
	namespacedName = nameShape{functionNameRE, functionNamePattern, 256}
	createName     = nameShape{createFunctionNameRE, createFunctionNamePattern, 140}
)

// functionRef is a function named in a request, with its qualifier.
type functionRef struct {
	Name string
	// Qualifier is the one in the ARN or the Qualifier parameter, "" if neither.
	Qualifier string
	// ARNQualifier is the one in the name or ARN, "" if none.
	ARNQualifier string
	// region and account are the ARN's, "" if it names none.
	region, account string
}

// isPlainName reports whether s is a bare function name (the common case, checked
// without a regular expression).
func isPlainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseFunctionName parses a FunctionName parameter (a name, a partial ARN or a full
// ARN, with or without qualifier) as Lambda does.
func (a *api) parseFunctionName(raw string) (functionRef, error) {
	if isPlainName(raw) {
		return functionRef{Name: raw}, nil
	}
	var v violations
	ref := matchName(raw, namespacedName, &v)
	if err := v.err(); err != nil {
		return ref, err
	}
	return ref, a.checkOwner(ref)
}

// matchName parses raw against shape, recording in v each constraint it fails.
func matchName(raw string, shape nameShape, v *violations) functionRef {
	if len(raw) > shape.max {
		v.add(raw, "functionName", "Member must have length less than or equal to "+itoa(shape.max))
	}
	m := shape.re.FindStringSubmatch(raw)
	if m == nil {
		v.add(raw, "functionName", "Member must satisfy regular expression pattern: "+shape.pattern)
		return functionRef{}
	}
	q := m[shape.re.SubexpIndex("qualifier")]
	return functionRef{
		Name: m[shape.re.SubexpIndex("name")], Qualifier: q, ARNQualifier: q,
		region:  strings.TrimSuffix(m[shape.re.SubexpIndex("region")], ":"),
		account: strings.TrimSuffix(m[shape.re.SubexpIndex("account")], ":"),
	}
}

// checkOwner refuses a name whose ARN is another region's or account's.
func (a *api) checkOwner(ref functionRef) error {
	if ref.region != "" && ref.region != a.cfg.Region {
		return awserr.NotFound("Functions from '%s' are not reachable in this region ('%s')", ref.region, a.cfg.Region)
	}
	if ref.account != "" && ref.account != a.cfg.AccountID {
		// Lambda's answer carries no message.
		return &awserr.Error{Code: awserr.CodeAccessDenied, Status: http.StatusForbidden}
	}
	return nil
}

// checkQualifier records the constraints a Qualifier parameter fails.
func checkQualifier(q string, v *violations) {
	if len(q) > 128 {
		v.add(q, "qualifier", "Member must have length less than or equal to 128")
	}
	if q == "" || !qualifierRE.MatchString(q) {
		v.add(q, "qualifier", "Member must satisfy regular expression pattern: "+qualifierPattern)
	}
}

// functionRef reads the {name} path value and the Qualifier query parameter.
func (a *api) functionRef(r *http.Request) (functionRef, error) {
	q, ok := queryValue(r, "Qualifier")
	return a.parseRef(r.PathValue("name"), q, ok)
}

// parseRef parses a FunctionName and, when hasQualifier, a Qualifier parameter.
func (a *api) parseRef(name, q string, hasQualifier bool) (functionRef, error) {
	if !hasQualifier {
		return a.parseFunctionName(name)
	}
	var v violations
	ref := functionRef{Name: name}
	if !isPlainName(name) {
		ref = matchName(name, namespacedName, &v)
	}
	checkQualifier(q, &v)
	if err := v.err(); err != nil {
		return ref, err
	}
	if err := a.checkOwner(ref); err != nil {
		return ref, err
	}
	if ref.ARNQualifier != "" && ref.ARNQualifier != q {
		return ref, awserr.InvalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
	}
	ref.Qualifier = q
	return ref, nil
}

// unqualifiedRef reads {name} for operations on the function itself.
func (a *api) unqualifiedRef(r *http.Request) (functionRef, error) {
	return a.parseFunctionName(r.PathValue("name"))
}

// queryValue returns a query parameter without parsing the whole query when there is
// none (the invoke path usually has none).
func queryValue(r *http.Request, key string) (string, bool) {
	if r.URL.RawQuery == "" {
		return "", false
	}
	vs, ok := r.URL.Query()[key]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}
