package sigv4

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseAuthorization feeds arbitrary Authorization headers to the parser and
// the checks after it: they never panic, refuse with an awserr, and what they
// accept reads back the same when written out again.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, " +
			"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=00",
		"AWS4-HMAC-SHA256 Credential= AKID/20181128/eu-central-1/cloud9/aws4_request, SignedHeaders=host, Signature=x",
		"Bearer abc", "eyJ0eXAi", "", " ", ",,,", "AWS4-HMAC-SHA256 ==,=", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f",
	} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, header string, hasDate bool) {
		a, err := ParseAuthorization(header)
		if err != nil {
			if codeOf(err) != "IncompleteSignatureException" {
				t.Fatalf("parse error %v is not IncompleteSignatureException", err)
			}
			return
		}
		if err := a.checkParams(header, hasDate); err != nil {
			if codeOf(err) != "IncompleteSignatureException" {
				t.Fatalf("check error %v is not IncompleteSignatureException", err)
			}
			return
		}
		again, err := ParseAuthorization(a.Algorithm + " Credential=" + a.RawCredential + ", SignedHeaders=" +
			a.SignedHeaders + ", Signature=" + a.Signature)
		if err != nil || again != a {
			t.Fatalf("written out and read again: %+v (%v), want %+v", again, err, a)
		}
		if c := a.Credential; c.AccessKeyID+"/"+c.Date+"/"+c.Region+"/"+c.Service+"/"+c.Terminator != a.RawCredential {
			t.Fatalf("credential %+v from %q", c, a.RawCredential)
		}
	})
}

// FuzzParseCredentials feeds arbitrary credentials files to the parser: it
// never panics and every profile it returns has a key and a secret.
func FuzzParseCredentials(f *testing.F) {
	f.Add("[default]\naws_access_key_id = AKIA1\naws_secret_access_key = s1\n")
	f.Add("# c\n[a]\nAWS_ACCESS_KEY_ID=K\n s3 =\n  x = 1\n[a]\naws_secret_access_key=S\n[b\n")
	f.Add("[]\n=\n")
	f.Fuzz(func(t *testing.T, in string) {
		profiles, err := ParseCredentials(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range profiles {
			if p.Profile == "" || p.AccessKeyID == "" || p.SecretAccessKey == "" {
				t.Fatalf("incomplete profile %+v", p)
			}
		}
	})
}

// FuzzVerifySDKSigned signs requests of arbitrary path, query, header value and
// body with the SDK's signer and checks that Verify accepts each as it arrives
// over HTTP: shoal's canonical request is the SDK's for every request the SDK
// can send. Header values are ASCII (the SDK and botocore trim non-ASCII
// spaces differently, and Lambda's clients sign none).
func FuzzVerifySDKSigned(f *testing.F) {
	f.Add("2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations",
		"Qualifier=prod", "RequestResponse", []byte(`{"a":1}`))
	f.Add("2015-03-31/functions", "Marker=a%2Bb%2Fc&MaxItems=5", "  two  spaces ", []byte{})
	f.Add("shoal/v1/functions/caf%C3%A9/logs", "follow=true&since=x+y", "", []byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, path, query, value string, body []byte) {
		u, err := url.Parse("http://127.0.0.1:9000/" + path)
		if err != nil || u.Host != "127.0.0.1:9000" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return
		}
		u.RawQuery = query
		if strings.ContainsAny(query, "# \x7f") || strings.ContainsFunc(query, func(r rune) bool { return r < 0x20 || r > 0x7e }) ||
			strings.Contains(query, qAlgorithm) {
			return
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c < 0x20 || c > 0x7e {
				return
			}
		}
		r, err := http.NewRequest("POST", u.String(), bytes.NewReader(body))
		if err != nil {
			return
		}
		if value != "" && strings.TrimSpace(value) != "" {
			r.Header.Set("X-Amz-Invocation-Type", value)
		}
		sdkSign(t, r, testKeyID, testSecret, testRegion, "lambda", testTime)
		var wire bytes.Buffer
		if err := r.Write(&wire); err != nil {
			return
		}
		got, err := http.ReadRequest(bufio.NewReader(&wire))
		if err != nil {
			return
		}
		if _, err := testVerifier(t, testTime).Verify(got); err != nil {
			t.Fatalf("Verify: %v\nrequest:\n%s", err, wire.String())
		}
	})
}
