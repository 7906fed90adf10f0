package registry

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// A function's resource-based policies: one per qualifier (the unqualified function,
// a published version, an alias), each a list of statements with a RevisionId.
//
// RevisionIds follow Lambda's: adding or removing a permission gives the policy a
// new RevisionId, and gives the same one to $LATEST (for the unqualified policy) or
// to the alias it belongs to, so that GetFunction and GetPolicy agree right after
// the change. A RevisionId given with a change must match the policy's, or the
// target's while it has no policy. A published version keeps its RevisionId (in
// shoal it names the environments that run the version): only its policy's changes.

// Statement is one statement of a resource-based policy, with Lambda's field order.
type Statement struct {
	Sid       string     `json:"Sid"`
	Effect    string     `json:"Effect"`
	Principal Principal  `json:"Principal"`
	Action    string     `json:"Action"`
	Resource  string     `json:"Resource"`
	Condition *Condition `json:"Condition,omitempty"`
}

// Principal is who a statement allows: everyone ("*"), a service
// ({"Service": "s3.amazonaws.com"}) or an AWS account or identity ({"AWS": arn}).
type Principal struct {
	Service string
	AWS     string
}

// Everyone is the principal "*".
var Everyone = Principal{AWS: "*"}

// MarshalJSON writes "*" for everyone, else an object with one member.
func (p Principal) MarshalJSON() ([]byte, error) {
	switch {
	case p.Service != "":
		return json.Marshal(struct {
			Service string `json:"Service"`
		}{p.Service})
	case p.AWS == "*":
		return []byte(`"*"`), nil
	default:
		return json.Marshal(struct {
			AWS string `json:"AWS"`
		}{p.AWS})
	}
}

// UnmarshalJSON reads what MarshalJSON writes.
func (p *Principal) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*p = Principal{AWS: s}
		return nil
	}
	var o struct{ Service, AWS string }
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	*p = Principal{Service: o.Service, AWS: o.AWS}
	return nil
}

// Condition is a statement's conditions, in the order Lambda writes them.
type Condition struct {
	StringEquals *StringEquals `json:"StringEquals,omitempty"`
	ArnLike      *ArnLike      `json:"ArnLike,omitempty"`
	Bool         *BoolCond     `json:"Bool,omitempty"`
}

// StringEquals holds the conditions on exact values.
type StringEquals struct {
	SourceAccount       string `json:"AWS:SourceAccount,omitempty"`
	FunctionURLAuthType string `json:"lambda:FunctionUrlAuthType,omitempty"`
	PrincipalOrgID      string `json:"aws:PrincipalOrgID,omitempty"`
	EventSourceToken    string `json:"lambda:EventSourceToken,omitempty"`
}

// ArnLike holds the condition on the caller's source ARN.
type ArnLike struct {
	SourceArn string `json:"AWS:SourceArn"`
}

// BoolCond holds boolean conditions.
type BoolCond struct {
	InvokedViaFunctionURL string `json:"lambda:InvokedViaFunctionUrl,omitempty"`
}

// Policy is the resource-based policy of a function, version or alias.
type Policy struct {
	Statements []Statement `json:"statements"`
	RevisionId string      `json:"revisionId"`
}

// Document renders the policy as GetPolicy returns it (a JSON string in the answer).
func (p *Policy) Document() string {
	b, _ := json.Marshal(struct {
		Version   string      `json:"Version"`
		ID        string      `json:"Id"`
		Statement []Statement `json:"Statement"`
	}{"2012-10-17", "default", p.Statements})
	return string(b)
}

// policyKey is the key of a qualifier's policy in the function record: $LATEST for
// the unqualified function.
func policyKey(qualifier string) string {
	if qualifier == "" {
		return Latest
	}
	return qualifier
}

// policyTarget checks that qualifier names a version or alias of rec and
// returns the RevisionId a change must match while there is no policy.
func (r *Registry) policyTarget(rec *functionRecord, function, qualifier string) (string, error) {
	switch {
	case qualifier == "" || qualifier == Latest:
		return rec.Latest.RevisionId, nil
	case rec.Versions[qualifier] != nil:
		return rec.Versions[qualifier].RevisionId, nil
	case rec.Aliases[qualifier] != nil:
		return rec.Aliases[qualifier].RevisionId, nil
	case isVersionNumber(qualifier) || strings.Contains(qualifier, "$"):
		return "", r.functionNotFound(function, qualifier)
	default:
		return "", awserr.NotFound("Cannot find alias arn: %s", r.FunctionARN(function, qualifier))
	}
}

// renewTarget gives $LATEST or the alias the policy's new RevisionId.
func renewTarget(rec *functionRecord, qualifier, revision string) {
	switch {
	case qualifier == "" || qualifier == Latest:
		rec.Latest.RevisionId = revision
	case rec.Aliases[qualifier] != nil:
		rec.Aliases[qualifier].RevisionId = revision
	}
}

func policyPrecondition() error {
	return awserr.PreconditionFailed("The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to retrieve the latest Revision Id")
}

// AddPermission adds st to the policy of the function's qualifier ("" for the
// function itself). revisionID, when not empty, must match the policy's RevisionId
// (the target's while it has none). A statement id already in the policy is
// Lambda's ResourceConflictException.
func (r *Registry) AddPermission(ctx context.Context, function, qualifier string, st Statement, revisionID string) (*Statement, error) {
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		current, err := r.policyTarget(rec, function, qualifier)
		if err != nil {
			return err
		}
		key := policyKey(qualifier)
		p := rec.Policies[key]
		if p != nil {
			current = p.RevisionId
		}
		if revisionID != "" && revisionID != current {
			return policyPrecondition()
		}
		if p == nil {
			p = &Policy{}
			if rec.Policies == nil {
				rec.Policies = map[string]*Policy{}
			}
			rec.Policies[key] = p
		}
		for _, s := range p.Statements {
			if s.Sid == st.Sid {
				return awserr.Conflict("The statement id (%s) provided already exists. Please provide a new statement id, or remove the existing statement.", st.Sid)
			}
		}
		p.Statements = append(p.Statements, st)
		p.RevisionId = NewRevisionID()
		renewTarget(rec, qualifier, p.RevisionId)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// RemovePermission removes the statement sid from the policy of the function's
// qualifier; removing the last statement removes the policy.
func (r *Registry) RemovePermission(ctx context.Context, function, qualifier, sid, revisionID string) error {
	if r.cached(function) == nil {
		if _, err := r.load(ctx, function); err != nil {
			return awserr.NotFound("No policy found for: %s", r.FunctionARN(function, qualifier))
		}
	}
	_, err := r.update(ctx, function, func(rec *functionRecord) error {
		if _, err := r.policyTarget(rec, function, qualifier); err != nil {
			return err
		}
		key := policyKey(qualifier)
		p := rec.Policies[key]
		if p == nil {
			return awserr.NotFound("No policy is associated with the given resource.")
		}
		if revisionID != "" && revisionID != p.RevisionId {
			return policyPrecondition()
		}
		i := -1
		for j, s := range p.Statements {
			if s.Sid == sid {
				i = j
			}
		}
		if i < 0 {
			return awserr.NotFound("Statement %s is not found in resource policy.", sid)
		}
		p.Statements = append(p.Statements[:i:i], p.Statements[i+1:]...)
		p.RevisionId = NewRevisionID()
		renewTarget(rec, qualifier, p.RevisionId)
		if len(p.Statements) == 0 {
			delete(rec.Policies, key)
		}
		return nil
	})
	if awserr.Is(err, awserr.CodeResourceNotFound) && r.cached(function) == nil {
		return awserr.NotFound("No policy found for: %s", r.FunctionARN(function, qualifier))
	}
	return err
}

// GetPolicy returns the policy of the function's qualifier ("" for the function
// itself). A function, version or alias without one is Lambda's
// ResourceNotFoundException "The resource you requested does not exist.".
func (r *Registry) GetPolicy(ctx context.Context, function, qualifier string) (*Policy, error) {
	notFound := awserr.NotFound("The resource you requested does not exist.")
	rec, err := r.load(ctx, function)
	if err != nil {
		return nil, notFound
	}
	if _, err := r.policyTarget(rec, function, qualifier); err != nil {
		return nil, notFound
	}
	p := rec.Policies[policyKey(qualifier)]
	if p == nil {
		return nil, notFound
	}
	return p, nil
}

// Policy returns the policy of the function's qualifier from the in-memory copy,
// nil if it has none. It is shared: do not modify it.
func (r *Registry) Policy(function, qualifier string) *Policy {
	rec := r.cached(function)
	if rec == nil {
		return nil
	}
	return rec.Policies[policyKey(qualifier)]
}
