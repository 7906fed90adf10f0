package funcurl

import "github.com/shoal-dev/shoal/internal/registry"

// allowsEveryone reports whether a policy lets anyone call a URL with AuthType
// NONE, as Lambda requires: a statement that allows lambda:InvokeFunctionUrl
// (or every action) to the principal "*", with no condition an anonymous
// caller cannot meet (a source account or ARN, an organisation, an event
// source token, another auth type).
func allowsEveryone(p *registry.Policy) bool {
	if p == nil {
		return false
	}
	for _, st := range p.Statements {
		if st.Effect != "Allow" || st.Principal != registry.Everyone {
			continue
		}
		switch st.Action {
		case "lambda:InvokeFunctionUrl", "lambda:*", "*":
		default:
			continue
		}
		if c := st.Condition; c != nil {
			if c.ArnLike != nil {
				continue
			}
			if se := c.StringEquals; se != nil {
				if se.SourceAccount != "" || se.PrincipalOrgID != "" || se.EventSourceToken != "" ||
					(se.FunctionURLAuthType != "" && se.FunctionURLAuthType != registry.URLAuthNone) {
					continue
				}
			}
		}
		return true
	}
	return false
}
