package sigv4

import (
	"net/url"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Algorithm is the only signing algorithm shoal accepts (SigV4 with HMAC-SHA256).
const Algorithm = "AWS4-HMAC-SHA256"

// Credential is the credential of a signature: the access key id and the scope
// (day, region, service, terminator) the signing key was derived for.
type Credential struct {
	AccessKeyID string
	Date        string // YYYYMMDD
	Region      string
	Service     string
	Terminator  string // "aws4_request"
}

// Authorization is what a request says about its signature, from its
// Authorization header or, for a presigned URL, its X-Amz-* query parameters.
// Fields it does not carry are empty.
type Authorization struct {
	Algorithm  string
	Credential Credential
	// RawCredential is the Credential parameter as sent, "" when absent.
	RawCredential string
	// SignedHeaders is the parameter as sent ("host;x-amz-date"): it is part of
	// the canonical request as is. "" when absent.
	SignedHeaders string
	// Signature is the hex signature as sent, "" when absent.
	Signature string
	// Presigned says the signature came in the query string. Date and Expires
	// are then its X-Amz-Date and X-Amz-Expires parameters.
	Presigned     bool
	Date, Expires string
}

// ParseAuthorization reads an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=…
//
// Parameters are separated by commas or spaces. A part that is not key=value is
// an IncompleteSignatureException with AWS's wording; missing parameters are not
// an error here (they leave their field empty: Verify names them all at once), nor
// is an unknown algorithm or a malformed credential (see checkParams).
func ParseAuthorization(header string) (Authorization, error) {
	var a Authorization
	alg, rest, _ := strings.Cut(strings.TrimLeft(header, " "), " ")
	a.Algorithm = alg
	for rest != "" {
		var part string
		i := indexSeparator(rest)
		if i < 0 {
			part, rest = rest, ""
		} else {
			part, rest = rest[:i], rest[i+1:]
		}
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return Authorization{}, awserr.IncompleteSignature(
				"'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", part, header)
		}
		switch k {
		case "Credential":
			a.RawCredential = v
		case "SignedHeaders":
			a.SignedHeaders = v
		case "Signature":
			a.Signature = v
		}
	}
	a.Credential = parseCredential(a.RawCredential)
	return a, nil
}

// indexSeparator is the index of the first comma or space in s, or -1.
func indexSeparator(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' || s[i] == ' ' {
			return i
		}
	}
	return -1
}

// Query parameters of a presigned request.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qExpires       = "X-Amz-Expires"
	qSecurityToken = "X-Amz-Security-Token"
)

// parsePresigned reads the X-Amz-* parameters of a presigned URL's query.
func parsePresigned(q url.Values) (Authorization, error) {
	a := Authorization{
		Presigned:     true,
		Algorithm:     q.Get(qAlgorithm),
		RawCredential: q.Get(qCredential),
		SignedHeaders: q.Get(qSignedHeaders),
		Signature:     q.Get(qSignature),
		Date:          q.Get(qDate),
		Expires:       q.Get(qExpires),
	}
	if a.RawCredential == "" || a.SignedHeaders == "" || a.Signature == "" || a.Date == "" {
		return Authorization{}, awserr.IncompleteSignature("AWS query-string parameters must include '%s', '%s', '%s', '%s', '%s'. "+
			"Re-examine the query-string parameters.", qAlgorithm, qCredential, qSignature, qDate, qSignedHeaders)
	}
	a.Credential = parseCredential(a.RawCredential)
	return a, nil
}

// parseCredential splits keyid/date/region/service/terminator; anything else
// leaves the Credential empty (checkParams refuses it).
func parseCredential(s string) Credential {
	var p [5]string
	for i := range 4 {
		var ok bool
		if p[i], s, ok = strings.Cut(s, "/"); !ok {
			return Credential{}
		}
	}
	if strings.Contains(s, "/") {
		return Credential{}
	}
	p[4] = s
	return Credential{AccessKeyID: p[0], Date: p[1], Region: p[2], Service: p[3], Terminator: p[4]}
}

// checkParams refuses, as IncompleteSignatureException, an Authorization that
// lacks a parameter, a date, the host among its signed headers, or whose
// credential is not five slash-separated parts. header is the Authorization
// header as sent (for the message); hasDate says the request has a date.
func (a *Authorization) checkParams(header string, hasDate bool) error {
	var missing []string
	if a.RawCredential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if a.Signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if a.SignedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if !hasDate {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return awserr.IncompleteSignature("%s Authorization=%s", strings.Join(missing, " "), header)
	}
	if a.Algorithm != Algorithm {
		return awserr.IncompleteSignature("Unsupported AWS 'algorithm': '%s'.", a.Algorithm)
	}
	if a.Credential == (Credential{}) {
		return awserr.IncompleteSignature("Credential must have exactly 5 slash-delimited elements, "+
			"e.g. keyid/date/region/service/term, got '%s'", a.RawCredential)
	}
	hasHost := false
	for h := range strings.SplitSeq(a.SignedHeaders, ";") {
		if h == "host" {
			hasHost = true
		}
	}
	if !hasHost {
		return awserr.IncompleteSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return nil
}
