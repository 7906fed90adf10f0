package lambdaapi

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/asyncq"
	"github.com/shoal-dev/shoal/internal/awserr"
)

func fuzzAPI() *api {
	cfg := Config{MaxZippedCodeBytes: 1 << 20, MaxUnzippedCodeBytes: 4 << 20}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &api{cfg: cfg}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// FuzzParseRef: function names, partial and full ARNs with qualifiers never panic,
// fail only with Lambda's error types, and yield a name and qualifier of the allowed
// shape.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"fn", "fn:1", "function:fn", "123456789012:function:fn:live",
		"arn:aws:lambda:us-east-1:123456789012:function:fn", "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST",
		"arn:aws:lambda:eu-west-1:123456789012:function:fn", "arn:aws:lambda:us-east-1:111111111111:function:fn",
		"arn:aws:lambda::123456789012:function:fn", "my-function!", "*", "fn:1:2", "a.b"} {
		f.Add(s, "", false)
		f.Add(s, "1", true)
		f.Add(s, "$LATEST", true)
	}
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, name, q string, hasQ bool) {
		ref, err := a.parseRef(name, q, hasQ)
		if err != nil {
			e := awserr.As(err)
			if e == nil {
				t.Fatalf("non-Lambda error %v", err)
			}
			switch e.Code {
			case awserr.CodeValidation, awserr.CodeInvalidParameterValue, awserr.CodeResourceNotFound, awserr.CodeAccessDenied:
			default:
				t.Fatalf("unexpected error type %s", e.Code)
			}
			return
		}
		if !nameRE.MatchString(ref.Name) {
			t.Fatalf("parsed name %q from %q", ref.Name, name)
		}
		if hasQ && ref.Qualifier != q {
			t.Fatalf("qualifier %q, given %q", ref.Qualifier, q)
		}
		if isPlainName(name) && ref.Name != name {
			t.Fatalf("plain name %q parsed as %q", name, ref.Name)
		}
	})
}

// FuzzCreateFunctionBody: CreateFunction bodies never panic and are refused only with
// Lambda's error types; an accepted body has a valid name, runtime and zip.
func FuzzCreateFunctionBody(f *testing.F) {
	zip := base64.StdEncoding.EncodeToString(makeZip(f, map[string]string{"bootstrap": "x"}))
	f.Add(`{"FunctionName":"fn","Role":"arn:aws:iam::123456789012:role/r","Runtime":"provided.al2023","Handler":"bootstrap","Code":{"ZipFile":"` + zip + `"}}`)
	f.Add(`{"FunctionName":"fn","Role":"arn:aws:iam::123456789012:role/r","Runtime":"python3.12","Handler":"h.h","MemorySize":64,"Code":{"ZipFile":"` + zip + `"}}`)
	f.Add(`{"FunctionName":"fn","Role":"r","Runtime":"nodejs22.x","Handler":"index.handler","Environment":{"Variables":{"AWS_REGION":"x"}},"Code":{"ZipFile":"bm90"}}`)
	f.Add(`{"FunctionName":"a:b:c","Architectures":["x86_64","arm64"],"Tags":{"a":"b"},"Timeout":901}`)
	f.Add(`{"FunctionName":"mi","Role":"arn:aws:iam::123456789012:role/r","Runtime":"python3.13","Handler":"h.h","MemorySize":4096,"PublishTo":"LATEST_PUBLISHED","CapacityProviderConfig":{"LambdaManagedInstancesCapacityProviderConfig":{"CapacityProviderArn":"arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp","PerExecutionEnvironmentMaxConcurrency":8,"ExecutionEnvironmentMemoryGiBPerVCpu":4.0}},"Code":{"ZipFile":"` + zip + `"}}`)
	f.Add(`{"FunctionName":"mi","CapacityProviderConfig":{"LambdaManagedInstancesCapacityProviderConfig":{"ExecutionEnvironmentMemoryGiBPerVCpu":3}}}`)
	f.Add(`{`)
	f.Add(``)
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, body string) {
		req, err := a.parseCreateFunction([]byte(body))
		if err != nil {
			e := awserr.As(err)
			if e == nil || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("refusal %v is not a Lambda client error", err)
			}
			return
		}
		if !isPlainName(*req.FunctionName) {
			t.Fatalf("accepted name %q", *req.FunctionName)
		}
		if req.Runtime == nil || !knownRuntimes[*req.Runtime] {
			t.Fatalf("accepted runtime %v", req.Runtime)
		}
		if req.Code == nil || len(req.Code.ZipFile) == 0 {
			t.Fatal("accepted without code")
		}
	})
}

// FuzzClientContext: any header value either decodes to JSON or is refused as Lambda does.
func FuzzClientContext(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte(`{"custom":{"a":"b"}}`)))
	f.Add("string")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := decodeClientContext(s)
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status != 400 {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		if s != "" && out == "" {
			t.Fatal("accepted a context and returned nothing")
		}
	})
}

// FuzzCreateCapacityProviderBody: CreateCapacityProvider bodies never panic and are
// refused only with Lambda's client errors; an accepted body has a valid name, one
// architecture, subnets, an operator role and a scaling config within the limits.
func FuzzCreateCapacityProviderBody(f *testing.F) {
	f.Add(`{"CapacityProviderName":"cp1","VpcConfig":{"SubnetIds":["subnet-1"],"SecurityGroupIds":["sg-1"]},"PermissionsConfig":{"CapacityProviderOperatorRoleArn":"arn:aws:iam::123456789012:role/op"}}`)
	f.Add(`{"CapacityProviderName":"arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp","VpcConfig":{"SubnetIds":["subnet-1"]},"PermissionsConfig":{"CapacityProviderOperatorRoleArn":"arn:aws:iam::123456789012:role/op"},"InstanceRequirements":{"Architectures":["arm64"],"AllowedInstanceTypes":["c7g.*"]},"CapacityProviderScalingConfig":{"ScalingMode":"Manual","MaxVCpuCount":8,"ScalingPolicies":[{"PredefinedMetricType":"LambdaCapacityProviderAverageCPUUtilization","TargetValue":50}]}}`)
	f.Add(`{"CapacityProviderName":"x","VpcConfig":{"SubnetIds":[]},"InstanceRequirements":{"AllowedInstanceTypes":["*"],"ExcludedInstanceTypes":["*"]}}`)
	f.Add(`{"CapacityProviderName":"x","VpcConfig":{"SubnetIds":["subnet-1"]},"PermissionsConfig":{"CapacityProviderOperatorRoleArn":"arn:aws:iam::123456789012:role/op"},"PropagateTags":{"Mode":"Explicit","ExplicitTags":{"a":"b"}},"TelemetryConfig":{"LoggingConfig":{"SystemLogLevel":"INFO","LogGroup":"/a/b"}},"Tags":{"k":"v"},"KmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/x"}`)
	f.Add(`{"CapacityProviderScalingConfig":{"MaxVCpuCount":1e99}}`)
	f.Add(`{`)
	f.Add(``)
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, body string) {
		req, err := a.parseCreateCapacityProvider([]byte(body))
		if err != nil {
			e := awserr.As(err)
			if e == nil || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("refusal %v is not a Lambda client error", err)
			}
			return
		}
		cp := req.Provider
		if !isPlainName(req.Name) {
			t.Fatalf("accepted name %q", req.Name)
		}
		if cp.InstanceRequirements == nil || len(cp.InstanceRequirements.Architectures) != 1 {
			t.Fatalf("accepted instance requirements %+v", cp.InstanceRequirements)
		}
		if len(cp.InstanceRequirements.AllowedInstanceTypes) > 0 && len(cp.InstanceRequirements.ExcludedInstanceTypes) > 0 {
			t.Fatal("accepted both allowed and excluded instance types")
		}
		if cp.VpcConfig == nil || len(cp.VpcConfig.SubnetIds) < 1 || len(cp.VpcConfig.SubnetIds) > 16 || len(cp.VpcConfig.SecurityGroupIds) > 5 {
			t.Fatalf("accepted VPC config %+v", cp.VpcConfig)
		}
		if cp.PermissionsConfig == nil || cp.PermissionsConfig.CapacityProviderOperatorRoleArn == "" {
			t.Fatal("accepted without an operator role")
		}
		sc := cp.CapacityProviderScalingConfig
		if sc == nil || sc.MaxVCpuCount < 2 || sc.MaxVCpuCount > 15000 || (sc.ScalingMode != "Auto" && sc.ScalingMode != "Manual") ||
			(sc.ScalingMode == "Manual") != (len(sc.ScalingPolicies) > 0) {
			t.Fatalf("accepted scaling config %+v", sc)
		}
	})
}

// FuzzUpdateCapacityProviderBody: UpdateCapacityProvider bodies never panic, are
// refused only with Lambda's client errors, and never change a setting fixed at
// creation.
func FuzzUpdateCapacityProviderBody(f *testing.F) {
	f.Add(`{"CapacityProviderScalingConfig":{"ScalingMode":"Manual","ScalingPolicies":[{"PredefinedMetricType":"LambdaCapacityProviderAverageCPUUtilization","TargetValue":40}]}}`)
	f.Add(`{"PropagateTags":{"Mode":"Explicit","ExplicitTags":{"a":"b"}},"TelemetryConfig":{"LoggingConfig":{"SystemLogLevel":"DEBUG"}}}`)
	f.Add(`{"VpcConfig":{"SubnetIds":["subnet-2"]}}`)
	f.Add(`{"KmsKeyArn":null,"CapacityProviderScalingConfig":{"MaxVCpuCount":2}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, body string) {
		u, err := parseUpdateCapacityProvider([]byte(body))
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("refusal %v is not a Lambda client error", err)
			}
			return
		}
		if sc := u.ScalingConfig; sc != nil && (sc.MaxVCpuCount < 2 || sc.MaxVCpuCount > 15000) {
			t.Fatalf("accepted MaxVCpuCount %d", sc.MaxVCpuCount)
		}
	})
}

// FuzzFunctionScalingConfig: any min/max pair is accepted only within Lambda's rules.
func FuzzFunctionScalingConfig(f *testing.F) {
	f.Add(3, 10, true, true)
	f.Add(0, 0, true, true)
	f.Add(0, 5, true, true)
	f.Add(-1, 0, true, false)
	f.Fuzz(func(t *testing.T, lo, hi int, hasLo, hasHi bool) {
		c := &functionScalingConfig{}
		if hasLo {
			c.MinExecutionEnvironments = &lo
		}
		if hasHi {
			c.MaxExecutionEnvironments = &hi
		}
		got, err := validateFunctionScaling(c)
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status != 400 {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		l, h := got.Bounds()
		if l < 0 || h > 15000 || l > h || (l == 0 && h != 0) {
			t.Fatalf("accepted min %d max %d", l, h)
		}
	})
}

// FuzzPublishLayerBody: PublishLayerVersion bodies never panic and are refused only
// with Lambda's client errors; an accepted body has a zip and compatible lists
// within their enums and lengths.
func FuzzPublishLayerBody(f *testing.F) {
	zip := base64.StdEncoding.EncodeToString(makeZip(f, map[string]string{"python/m.py": "x"}))
	f.Add(`{"Content":{"ZipFile":"` + zip + `"},"CompatibleRuntimes":["python3.12"],"CompatibleArchitectures":["x86_64"],"Description":"d","LicenseInfo":"MIT"}`)
	f.Add(`{"Content":{"ZipFile":"` + zip + `"},"CompatibleRuntimes":[],"CompatibleArchitectures":[]}`)
	f.Add(`{"Content":{"S3Bucket":"b","S3Key":"k"}}`)
	f.Add(`{"Content":{"ZipFile":"bm90"},"CompatibleRuntimes":["java8","nope"],"CompatibleArchitectures":["arm64","x86_64","arm64"]}`)
	f.Add(`{}`)
	f.Add(`{`)
	a := fuzzAPI()
	f.Fuzz(func(t *testing.T, body string) {
		req, err := a.parsePublishLayer([]byte(body))
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("refusal %v is not a Lambda client error", err)
			}
			return
		}
		if req.Content == nil || len(req.Content.ZipFile) == 0 {
			t.Fatal("accepted without a zip")
		}
		if len(req.CompatibleRuntimes) > 15 || len(req.CompatibleArchitectures) > 2 {
			t.Fatalf("accepted %d runtimes, %d architectures", len(req.CompatibleRuntimes), len(req.CompatibleArchitectures))
		}
	})
}

// FuzzFunctionLayers: any Layers list is accepted only as up to 5 layer version
// ARNs, no two of one layer.
func FuzzFunctionLayers(f *testing.F) {
	f.Add("arn:aws:lambda:us-east-1:123456789012:layer:a:1", "arn:aws:lambda:us-east-1:123456789012:layer:b:2")
	f.Add("arn:aws:lambda:us-east-1:123456789012:layer:a:1", "arn:aws:lambda:us-east-1:123456789012:layer:a:2")
	f.Add("arn:aws:lambda:us-east-1:123456789012:layer:a", "")
	f.Add("arn:aws:lambda:::awslayer:AWSLambda-Python", ":")
	f.Fuzz(func(t *testing.T, a, b string) {
		layers := []string{a, b}
		var v violations
		checkLayers(layers, &v)
		var err error
		if e := v.err(); e != nil {
			err = e
		} else {
			err = validateLayers(layers)
		}
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status != 400 {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		if !layerVersionArnRE.MatchString(a) || !layerVersionArnRE.MatchString(b) || a[:strings.LastIndexByte(a, ':')] == b[:strings.LastIndexByte(b, ':')] {
			t.Fatalf("accepted %q and %q", a, b)
		}
	})
}

// FuzzRuntimeManagementBody: PutRuntimeManagementConfig bodies never panic and are
// refused only with Lambda's client errors; an accepted one is a known mode, with a
// runtime version exactly when Manual.
func FuzzRuntimeManagementBody(f *testing.F) {
	f.Add(`{"UpdateRuntimeOn":"Auto"}`)
	f.Add(`{"UpdateRuntimeOn":"Manual","RuntimeVersionArn":"arn:aws:lambda:us-east-1::runtime:abc"}`)
	f.Add(`{"UpdateRuntimeOn":"FunctionUpdate","RuntimeVersionArn":"x"}`)
	f.Add(`{"RuntimeVersionArn":null}`)
	f.Fuzz(func(t *testing.T, body string) {
		var req putRuntimeManagementRequest
		if err := unmarshalBody([]byte(body), &req); err != nil {
			return
		}
		c, err := parseRuntimeManagement(&req)
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status != 400 {
				t.Fatalf("refusal %v", err)
			}
			return
		}
		switch c.UpdateRuntimeOn {
		case "Auto", "FunctionUpdate", "Manual":
		default:
			t.Fatalf("accepted mode %q", c.UpdateRuntimeOn)
		}
		if (c.UpdateRuntimeOn == "Manual") != (c.RuntimeVersionArn != "") {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// FuzzEventInvokeConfigBody: a Put or Update body that is accepted sets
// something, within Lambda's limits, with destinations of Lambda's pattern;
// anything else is a client error.
func FuzzEventInvokeConfigBody(f *testing.F) {
	f.Add(`{"MaximumRetryAttempts":1}`)
	f.Add(`{"MaximumEventAgeInSeconds":59}`)
	f.Add(`{"DestinationConfig":{"OnSuccess":{"Destination":"arn:aws:nats:us-east-1:123456789012:lambda.x"},"OnFailure":{}}}`)
	f.Add(`{"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:_-/!lambda:us-east-1:123456789012:function:f"}}}`)
	f.Add(`{}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := parseEventInvokeConfig(httptest.NewRequest(http.MethodPut, "/", strings.NewReader(body)))
		if err != nil {
			if e := awserr.As(err); e == nil || e.Status < 400 || e.Status >= 500 {
				t.Fatalf("refusal %v is not a Lambda client error", err)
			}
			return
		}
		if req.MaximumRetryAttempts == nil && req.MaximumEventAgeInSeconds == nil && req.DestinationConfig == nil {
			t.Fatal("accepted a body that sets nothing")
		}
		if n := req.MaximumRetryAttempts; n != nil && (*n < 0 || *n > 2) {
			t.Fatalf("accepted %d retries", *n)
		}
		if n := req.MaximumEventAgeInSeconds; n != nil && (*n < 60 || *n > 21600) {
			t.Fatalf("accepted a maximum age of %d s", *n)
		}
		if d := req.DestinationConfig; d != nil {
			for _, dst := range []*destinationRequest{d.OnSuccess, d.OnFailure} {
				if dst != nil && dst.Destination != nil && !asyncq.MatchesPattern(*dst.Destination) {
					t.Fatalf("accepted destination %q", *dst.Destination)
				}
			}
		}
	})
}
