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
	createFunctionNamePattern = `(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?`
	qualifierPattern          = `\$(LATEST(\.PUBLISHED)?)|[a-zA-Z0-9-_$]+`
	aliasNamePattern          = `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`
	functionVersionPattern    = `(\$LATEST(\.PUBLISHED)?|[0-9]+)`
	rolePattern               = `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`
	tagResourcePattern        = `arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)`
)

// The same patterns for Go's regexp (RE2: '-' last in classes, no look-ahead).
var (
	functionNameRE       = regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:)?(?P<account>\d{12}:)?(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$`)
	createFunctionNameRE = regexp.MustCompile(`^(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d:)?(?P<account>\d{12}:)?(?:function:)?(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?$`)
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
	return awserr.Validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, field, constraint)
}

func nullError(field string) *awserr.Error {
	return awserr.Validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
}

func patternError(value, field, pattern string) *awserr.Error {
	return validationError(value, field, "Member must satisfy regular expression pattern: "+pattern)
}

// functionRef is a function named in a request, with its qualifier.
type functionRef struct {
	Name string
	// Qualifier is the one in the ARN or the Qualifier parameter, "" if neither.
	Qualifier string
	// ARNQualifier is the one in the name or ARN, "" if none.
	ARNQualifier string
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
	return a.parseFunctionNameRE(raw, functionNameRE, functionNamePattern)
}

func (a *api) parseFunctionNameRE(raw string, re *regexp.Regexp, pattern string) (functionRef, error) {
	m := re.FindStringSubmatch(raw)
	if m == nil {
		return functionRef{}, patternError(raw, "functionName", pattern)
	}
	if len(raw) > 140 {
		return functionRef{}, validationError(raw, "functionName", "Member must have length less than or equal to 140")
	}
	region := strings.TrimSuffix(m[re.SubexpIndex("region")], ":")
	account := strings.TrimSuffix(m[re.SubexpIndex("account")], ":")
	if region != "" && region != a.cfg.Region {
		return functionRef{}, awserr.NotFound("Functions from '%s' are not reachable in this region ('%s')", region, a.cfg.Region)
	}
	if account != "" && account != a.cfg.AccountID {
		return functionRef{}, &awserr.Error{Code: awserr.CodeAccessDenied, Status: http.StatusForbidden, Type: "User",
			Message: fmt.Sprintf("User is not authorized to access functions of account %s", account)}
	}
	q := m[re.SubexpIndex("qualifier")]
	return functionRef{Name: m[re.SubexpIndex("name")], Qualifier: q, ARNQualifier: q}, nil
}

// validateQualifier checks a Qualifier parameter.
func validateQualifier(q string) error {
	if len(q) > 128 {
		return validationError(q, "qualifier", "Member must have length less than or equal to 128")
	}
	if q == "" || !qualifierRE.MatchString(q) {
		return patternError(q, "qualifier", qualifierPattern)
	}
	return nil
}

// functionRef reads the {name} path value and the Qualifier query parameter.
func (a *api) functionRef(r *http.Request) (functionRef, error) {
	q, ok := queryValue(r, "Qualifier")
	return a.parseRef(r.PathValue("name"), q, ok)
}

// parseRef parses a FunctionName and, when hasQualifier, a Qualifier parameter.
func (a *api) parseRef(name, q string, hasQualifier bool) (functionRef, error) {
	ref, err := a.parseFunctionName(name)
	if err != nil {
		return ref, err
	}
	if hasQualifier {
		if err := validateQualifier(q); err != nil {
			return ref, err
		}
		if ref.ARNQualifier != "" && ref.ARNQualifier != q {
			return ref, awserr.InvalidParameter("The derived qualifier from the function name does not match the specified qualifier.")
		}
		ref.Qualifier = q
	}
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
