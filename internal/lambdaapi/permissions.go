package lambdaapi

import (
	"encoding/json"
	"net/http"
	"regexp"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Resource-based policies: AddPermission, RemovePermission and GetPolicy, with
// Lambda's statement shapes. The registry keeps the policies and their RevisionIds;
// the function URL front door enforces them for URLs with AuthType NONE.

// Patterns of AddPermission's members, as Lambda prints them and for Go's regexp
// (the statement id's is shared with the layer permissions, layers.go).
const (
	removeStatementIDPattern = `([a-zA-Z0-9-_.]+)`
	actionPattern            = `(lambda:[*]|lambda:[a-zA-Z]+|[*])`
	principalPattern         = `[^\s]+`
	sourceArnPattern         = `arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:([a-z]{2}(-gov)?-[a-z]+-\d{1})?:(\d{12})?:(.*)`
	sourceAccountPattern     = `\d{12}`
	eventSourceTokenPattern  = `[a-zA-Z0-9._\-]+`
	principalOrgIDPattern    = `o-[a-z0-9]{10,32}`
)

var (
	removeStatementIDRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	actionRE            = regexp.MustCompile(`^(?:lambda:[*]|lambda:[a-zA-Z]+|[*])$`)
	principalRE         = regexp.MustCompile(`^[^\s]+$`)
	sourceArnRE         = regexp.MustCompile(`^arn:aws[a-zA-Z0-9-]*:[a-zA-Z0-9-]+:(?:[a-z]{2}(?:-gov)?-[a-z]+-\d)?:(?:\d{12})?:.*$`)
	accountRE           = regexp.MustCompile(`^\d{12}$`)
	eventSourceTokenRE  = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	principalOrgIDRE    = regexp.MustCompile(`^o-[a-z0-9]{10,32}$`)
	// servicePrincipalRE is an AWS service principal (s3.amazonaws.com,
	// alexa-appkit.amazon.com, …).
	servicePrincipalRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*\.(?:amazonaws\.com|amazon\.com|amazonaws\.com\.cn)$`)
	iamARNRE           = regexp.MustCompile(`^arn:aws[a-zA-Z-]*:(?:iam|sts)::\d{12}:.+$`)
)

// addPermissionRequest is AddPermission's body.
type addPermissionRequest struct {
	StatementId           *string `json:"StatementId"`
	Action                *string `json:"Action"`
	Principal             *string `json:"Principal"`
	SourceArn             string  `json:"SourceArn"`
	SourceAccount         string  `json:"SourceAccount"`
	EventSourceToken      string  `json:"EventSourceToken"`
	RevisionId            string  `json:"RevisionId"`
	PrincipalOrgID        string  `json:"PrincipalOrgID"`
	FunctionUrlAuthType   string  `json:"FunctionUrlAuthType"`
	InvokedViaFunctionUrl *bool   `json:"InvokedViaFunctionUrl"`
}

// validate records the constraints the body fails.
func (b *addPermissionRequest) validate(v *violations) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if b.StatementId == nil {
		v.addRaw("Value null at 'statementId' failed to satisfy constraint: Member must not be null")
	} else if sid := *b.StatementId; len(sid) > 100 {
		v.add(sid, "statementId", "Member must have length less than or equal to 100")
	} else if !statementIDRE.MatchString(sid) {
		v.add(sid, "statementId", "Member must satisfy regular expression pattern: "+statementIDPattern)
	}
	if b.Action == nil {
		v.addRaw("Value null at 'action' failed to satisfy constraint: Member must not be null")
	} else if !actionRE.MatchString(*b.Action) {
		v.add(*b.Action, "action", "Member must satisfy regular expression pattern: "+actionPattern)
	}
	if b.Principal == nil {
		v.addRaw("Value null at 'principal' failed to satisfy constraint: Member must not be null")
	} else if !principalRE.MatchString(str(b.Principal)) {
		v.add(*b.Principal, "principal", "Member must satisfy regular expression pattern: "+principalPattern)
	}
	if b.SourceArn != "" && !sourceArnRE.MatchString(b.SourceArn) {
		v.add(b.SourceArn, "sourceArn", "Member must satisfy regular expression pattern: "+sourceArnPattern)
	}
	if b.SourceAccount != "" && !accountRE.MatchString(b.SourceAccount) {
		v.add(b.SourceAccount, "sourceAccount", "Member must satisfy regular expression pattern: "+sourceAccountPattern)
	}
	if len(b.EventSourceToken) > 256 {
		v.add(b.EventSourceToken, "eventSourceToken", "Member must have length less than or equal to 256")
	} else if b.EventSourceToken != "" && !eventSourceTokenRE.MatchString(b.EventSourceToken) {
		v.add(b.EventSourceToken, "eventSourceToken", "Member must satisfy regular expression pattern: "+eventSourceTokenPattern)
	}
	if b.PrincipalOrgID != "" && !principalOrgIDRE.MatchString(b.PrincipalOrgID) {
		v.add(b.PrincipalOrgID, "principalOrgID", "Member must satisfy regular expression pattern: "+principalOrgIDPattern)
	}
	if b.FunctionUrlAuthType != "" && b.FunctionUrlAuthType != registry.URLAuthNone && b.FunctionUrlAuthType != registry.URLAuthIAM {
		v.add(b.FunctionUrlAuthType, "functionUrlAuthType", "Member must satisfy enum value set: [AWS_IAM, NONE]")
	}
}

// principal turns AddPermission's Principal into the statement's.
func (a *api) principal(p string) (registry.Principal, error) {
	switch {
	case p == "*":
		return registry.Everyone, nil
	case accountRE.MatchString(p):
		return registry.Principal{AWS: "arn:aws:iam::" + p + ":root"}, nil
	case iamARNRE.MatchString(p):
		return registry.Principal{AWS: p}, nil
	case servicePrincipalRE.MatchString(p):
		return registry.Principal{Service: p}, nil
	}
	return registry.Principal{}, awserr.InvalidParameter("The provided principal was invalid. Please check the principal and try again.")
}

// statement builds the statement AddPermission adds.
func (a *api) statement(b *addPermissionRequest, resource string) (registry.Statement, error) {
	p, err := a.principal(*b.Principal)
	if err != nil {
		return registry.Statement{}, err
	}
	if b.FunctionUrlAuthType != "" && *b.Action != "lambda:InvokeFunctionUrl" {
		return registry.Statement{}, awserr.InvalidParameter("FunctionUrlAuthType is only supported for lambda:InvokeFunctionUrl action")
	}
	st := registry.Statement{Sid: *b.StatementId, Effect: "Allow", Principal: p, Action: *b.Action, Resource: resource}
	var c registry.Condition
	se := registry.StringEquals{SourceAccount: b.SourceAccount, FunctionURLAuthType: b.FunctionUrlAuthType,
		PrincipalOrgID: b.PrincipalOrgID, EventSourceToken: b.EventSourceToken}
	if se != (registry.StringEquals{}) {
		c.StringEquals = &se
	}
	if b.SourceArn != "" {
		c.ArnLike = &registry.ArnLike{SourceArn: b.SourceArn}
	}
	if b.InvokedViaFunctionUrl != nil && *b.InvokedViaFunctionUrl {
		c.Bool = &registry.BoolCond{InvokedViaFunctionURL: "true"}
	}
	if c != (registry.Condition{}) {
		st.Condition = &c
	}
	return st, nil
}

// addPermission is AddPermission: POST /2015-03-31/functions/{name}/policy.
func (a *api) addPermission(w http.ResponseWriter, r *http.Request) error {
	var body addPermissionRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	var v violations
	body.validate(&v)
	if err := v.err(); err != nil {
		return err
	}
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	if ref.Qualifier == registry.Latest {
		return awserr.InvalidParameter("We currently do not support adding policies for $LATEST.")
	}
	st, err := a.statement(&body, a.reg.FunctionARN(ref.Name, ref.Qualifier))
	if err != nil {
		return err
	}
	if _, err := a.reg.AddPermission(r.Context(), ref.Name, ref.Qualifier, st, body.RevisionId); err != nil {
		if awserr.Is(err, awserr.CodeResourceNotFound) && !a.functionExists(r, ref.Name) {
			return a.reg.FunctionNotFound(ref.Name, "")
		}
		return err
	}
	doc, _ := json.Marshal(st)
	return writeJSON(w, http.StatusCreated, struct {
		Statement string `json:"Statement"`
	}{string(doc)})
}

// functionExists reports whether the function exists.
func (a *api) functionExists(r *http.Request, name string) bool {
	_, err := a.reg.GetFunction(r.Context(), name)
	return err == nil
}

// policyQualifier is the qualifier a policy operation names: "" and $LATEST are
// the function itself.
func policyQualifier(ref functionRef) string {
	if ref.Qualifier == registry.Latest {
		return ""
	}
	return ref.Qualifier
}

// removePermission is RemovePermission: DELETE /2015-03-31/functions/{name}/policy/{sid}.
func (a *api) removePermission(w http.ResponseWriter, r *http.Request) error {
	sid := r.PathValue("sid")
	var v violations
	if len(sid) > 100 {
		v.add(sid, "statementId", "Member must have length less than or equal to 100")
	} else if !removeStatementIDRE.MatchString(sid) {
		v.add(sid, "statementId", "Member must satisfy regular expression pattern: "+removeStatementIDPattern)
	}
	if err := v.err(); err != nil {
		return err
	}
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	revision, _ := queryValue(r, "RevisionId")
	if err := a.reg.RemovePermission(r.Context(), ref.Name, policyQualifier(ref), sid, revision); err != nil {
		return err
	}
	return writeNoContent(w)
}

// getPolicy is GetPolicy: GET /2015-03-31/functions/{name}/policy.
func (a *api) getPolicy(w http.ResponseWriter, r *http.Request) error {
	ref, err := a.functionRef(r)
	if err != nil {
		return err
	}
	p, err := a.reg.GetPolicy(r.Context(), ref.Name, policyQualifier(ref))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Policy     string `json:"Policy"`
		RevisionId string `json:"RevisionId"`
	}{p.Document(), p.RevisionId})
}
