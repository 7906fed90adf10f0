package lambdaapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/registry"
)

const testOperatorRole = "arn:aws:iam::123456789012:role/operator"

func cpInput(name string) *lambda.CreateCapacityProviderInput {
	return &lambda.CreateCapacityProviderInput{
		CapacityProviderName: aws.String(name),
		VpcConfig:            &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:    &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String(testOperatorRole)},
	}
}

func cpARN(name string) string {
	return "arn:aws:lambda:us-east-1:123456789012:capacity-provider:" + name
}

// createCP creates a capacity provider through the SDK and, when active, reports it
// Active as the control plane would.
func (e *env) createCP(t testing.TB, in *lambda.CreateCapacityProviderInput, active bool) *types.CapacityProvider {
	t.Helper()
	out, err := e.client.CreateCapacityProvider(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if active {
		if err := e.reg.SetCapacityProviderState(context.Background(), aws.ToString(in.CapacityProviderName), registry.CapacityProviderActive, ""); err != nil {
			t.Fatal(err)
		}
	}
	return out.CapacityProvider
}

// errorCode asserts that err is an API error with the given code.
func errorCode(t testing.TB, err error, code string) {
	t.Helper()
	e := wantErr[smithy.APIError](t, err)
	if e.ErrorCode() != code {
		t.Fatalf("code = %s (%v), want %s", e.ErrorCode(), err, code)
	}
}

func TestCapacityProviderLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created := e.createCP(t, cpInput("cp1"), false)
	want := &types.CapacityProvider{
		CapacityProviderArn: aws.String(cpARN("cp1")),
		State:               types.CapacityProviderStatePending,
		VpcConfig:           &types.CapacityProviderVpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}},
		PermissionsConfig:   &types.CapacityProviderPermissionsConfig{CapacityProviderOperatorRoleArn: aws.String(testOperatorRole)},
		InstanceRequirements: &types.InstanceRequirements{
			Architectures: []types.Architecture{types.ArchitectureX8664},
		},
		CapacityProviderScalingConfig: &types.CapacityProviderScalingConfig{
			MaxVCpuCount: aws.Int32(400), ScalingMode: types.CapacityProviderScalingModeAuto,
		},
		LastModified: created.LastModified,
	}
	if diff := cmp.Diff(jsonOf(t, want), jsonOf(t, created)); diff != "" {
		t.Errorf("created (-want +got):\n%s", diff)
	}
	if aws.ToString(created.LastModified) == "" {
		t.Error("no LastModified")
	}

	// Pending until the control plane reports it Active.
	got, err := e.client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
	if err != nil || got.CapacityProvider.State != types.CapacityProviderStatePending {
		t.Fatalf("get = %+v, %v; want Pending", got, err)
	}
	if err := e.reg.SetCapacityProviderState(ctx, "cp1", registry.CapacityProviderActive, ""); err != nil {
		t.Fatal(err)
	}
	got, err = e.client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String(cpARN("cp1"))})
	if err != nil || got.CapacityProvider.State != types.CapacityProviderStateActive {
		t.Fatalf("get by ARN = %+v, %v; want Active", got, err)
	}

	_, err = e.client.CreateCapacityProvider(ctx, cpInput("cp1"))
	if e := wantErr[*types.ResourceConflictException](t, err); aws.ToString(e.Message) != "Capacity provider already exists: "+cpARN("cp1") {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("nope")})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Capacity provider not found: "+cpARN("nope") {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("bad name")})
	validation(t, err)

	// Update: scaling, tag propagation and telemetry.
	up, err := e.client.UpdateCapacityProvider(ctx, &lambda.UpdateCapacityProviderInput{
		CapacityProviderName: aws.String("cp1"),
		CapacityProviderScalingConfig: &types.CapacityProviderScalingConfig{
			MaxVCpuCount: aws.Int32(64), ScalingMode: types.CapacityProviderScalingModeManual,
			ScalingPolicies: []types.TargetTrackingScalingPolicy{{
				PredefinedMetricType: types.CapacityProviderPredefinedMetricTypeLambdaCapacityProviderAverageCPUUtilization,
				TargetValue:          aws.Float64(55),
			}},
		},
		PropagateTags:   &types.PropagateTags{Mode: types.PropagateTagsModeExplicit, ExplicitTags: map[string]string{"team": "a"}},
		TelemetryConfig: &types.CapacityProviderTelemetryConfig{LoggingConfig: &types.CapacityProviderLoggingConfig{SystemLogLevel: types.SystemLogLevelWarn}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sc := up.CapacityProvider.CapacityProviderScalingConfig
	if aws.ToInt32(sc.MaxVCpuCount) != 64 || sc.ScalingMode != types.CapacityProviderScalingModeManual || len(sc.ScalingPolicies) != 1 ||
		aws.ToFloat64(sc.ScalingPolicies[0].TargetValue) != 55 || up.CapacityProvider.State != types.CapacityProviderStateActive ||
		up.CapacityProvider.PropagateTags.ExplicitTags["team"] != "a" ||
		up.CapacityProvider.TelemetryConfig.LoggingConfig.SystemLogLevel != types.SystemLogLevelWarn {
		t.Errorf("updated %+v", up.CapacityProvider)
	}
	_, err = e.client.UpdateCapacityProvider(ctx, &lambda.UpdateCapacityProviderInput{
		CapacityProviderName:          aws.String("cp1"),
		CapacityProviderScalingConfig: &types.CapacityProviderScalingConfig{ScalingMode: types.CapacityProviderScalingModeManual},
	})
	wantErr[*types.InvalidParameterValueException](t, err)
	_, err = e.client.UpdateCapacityProvider(ctx, &lambda.UpdateCapacityProviderInput{
		CapacityProviderName: aws.String("nope"), PropagateTags: &types.PropagateTags{Mode: types.PropagateTagsModeNone}})
	wantErr[*types.ResourceNotFoundException](t, err)
	// The settings fixed at creation cannot be sent by the SDK; a raw request is refused.
	req, _ := http.NewRequest(http.MethodPut, e.url+"/2025-11-30/capacity-providers/cp1",
		strings.NewReader(`{"VpcConfig":{"SubnetIds":["subnet-2"]}}`))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 || res.Header.Get("X-Amzn-Errortype") != "InvalidParameterValueException" {
		t.Errorf("update of VpcConfig: %d %s", res.StatusCode, res.Header.Get("X-Amzn-Errortype"))
	}

	// Delete is refused while a function uses it, then accepted.
	fn := e.createManaged(t, "mi", "cp1", nil)
	_ = fn
	_, err = e.client.DeleteCapacityProvider(ctx, &lambda.DeleteCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
	wantErr[*types.ResourceConflictException](t, err)
	vs, err := e.client.ListFunctionVersionsByCapacityProvider(ctx, &lambda.ListFunctionVersionsByCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(vs.CapacityProviderArn) != cpARN("cp1") || len(vs.FunctionVersions) != 1 ||
		aws.ToString(vs.FunctionVersions[0].FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:mi:$LATEST" ||
		vs.FunctionVersions[0].State != types.StateActiveNonInvocable {
		t.Errorf("versions by capacity provider %+v", vs.FunctionVersions)
	}
	if _, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("mi")}); err != nil {
		t.Fatal(err)
	}
	del, err := e.client.DeleteCapacityProvider(ctx, &lambda.DeleteCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
	if err != nil {
		t.Fatal(err)
	}
	if del.CapacityProvider.State != types.CapacityProviderStateDeleting {
		t.Errorf("deleted state %s", del.CapacityProvider.State)
	}
	_, err = e.client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
	wantErr[*types.ResourceNotFoundException](t, err)
	_, err = e.client.DeleteCapacityProvider(ctx, &lambda.DeleteCapacityProviderInput{CapacityProviderName: aws.String("cp1")})
	wantErr[*types.ResourceNotFoundException](t, err)
}

func TestListCapacityProviders(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		e.createCP(t, cpInput(n), n == "b" || n == "d")
	}
	names := func(cps []types.CapacityProvider) []string {
		var out []string
		for _, cp := range cps {
			out = append(out, strings.TrimPrefix(aws.ToString(cp.CapacityProviderArn), cpARN("")))
		}
		return out
	}
	all, err := e.client.ListCapacityProviders(ctx, &lambda.ListCapacityProvidersInput{})
	if err != nil || all.NextMarker != nil {
		t.Fatal(err, all.NextMarker)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, names(all.CapacityProviders)); diff != "" {
		t.Errorf("all (-want +got):\n%s", diff)
	}
	active, err := e.client.ListCapacityProviders(ctx, &lambda.ListCapacityProvidersInput{State: types.CapacityProviderStateActive})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b", "d"}, names(active.CapacityProviders)); diff != "" {
		t.Errorf("Active (-want +got):\n%s", diff)
	}
	// Pages of two of the Pending ones, through the SDK's paginator.
	p := lambda.NewListCapacityProvidersPaginator(e.client, &lambda.ListCapacityProvidersInput{
		State: types.CapacityProviderStatePending, MaxItems: aws.Int32(2)})
	var pages [][]string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, names(page.CapacityProviders))
	}
	if diff := cmp.Diff([][]string{{"a", "c"}, {"e"}}, pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
	_, err = e.client.ListCapacityProviders(ctx, &lambda.ListCapacityProvidersInput{MaxItems: aws.Int32(51)})
	validation(t, err)
	_, err = e.client.ListCapacityProviders(ctx, &lambda.ListCapacityProvidersInput{State: "Sleeping"})
	validation(t, err)
}

func TestCreateCapacityProviderValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(in *lambda.CreateCapacityProviderInput)
		code   string
	}{
		{"bad name", func(in *lambda.CreateCapacityProviderInput) { in.CapacityProviderName = aws.String("a b") }, "ValidationException"},
		{"name too long", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderName = aws.String(strings.Repeat("a", 65))
		}, "ValidationException"},
		{"arn of another region", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderName = aws.String("arn:aws:lambda:eu-west-1:123456789012:capacity-provider:x")
		}, "ResourceNotFoundException"},
		{"no subnets", func(in *lambda.CreateCapacityProviderInput) { in.VpcConfig.SubnetIds = []string{} }, "ValidationException"},
		{"17 subnets", func(in *lambda.CreateCapacityProviderInput) {
			in.VpcConfig.SubnetIds = strings.Split(strings.Repeat("subnet-a,", 17)[:17*9-1], ",")
		}, "ValidationException"},
		{"bad subnet", func(in *lambda.CreateCapacityProviderInput) { in.VpcConfig.SubnetIds = []string{"vpc-1"} }, "ValidationException"},
		{"6 security groups", func(in *lambda.CreateCapacityProviderInput) {
			in.VpcConfig.SecurityGroupIds = []string{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"}
		}, "ValidationException"},
		{"bad role", func(in *lambda.CreateCapacityProviderInput) {
			in.PermissionsConfig.CapacityProviderOperatorRoleArn = aws.String("role")
		}, "ValidationException"},
		{"two architectures", func(in *lambda.CreateCapacityProviderInput) {
			in.InstanceRequirements = &types.InstanceRequirements{Architectures: []types.Architecture{"x86_64", "arm64"}}
		}, "ValidationException"},
		{"unknown architecture", func(in *lambda.CreateCapacityProviderInput) {
			in.InstanceRequirements = &types.InstanceRequirements{Architectures: []types.Architecture{"riscv"}}
		}, "ValidationException"},
		{"allowed and excluded", func(in *lambda.CreateCapacityProviderInput) {
			in.InstanceRequirements = &types.InstanceRequirements{AllowedInstanceTypes: []string{"m7i.*"}, ExcludedInstanceTypes: []string{"c*"}}
		}, "InvalidParameterValueException"},
		{"bad instance type pattern", func(in *lambda.CreateCapacityProviderInput) {
			in.InstanceRequirements = &types.InstanceRequirements{AllowedInstanceTypes: []string{"m7i/large"}}
		}, "ValidationException"},
		{"nothing matches", func(in *lambda.CreateCapacityProviderInput) {
			in.InstanceRequirements = &types.InstanceRequirements{Architectures: []types.Architecture{"arm64"}, AllowedInstanceTypes: []string{"m7i.*"}}
		}, "InvalidParameterValueException"},
		{"small instance types only", func(in *lambda.CreateCapacityProviderInput) {
			in.InstanceRequirements = &types.InstanceRequirements{AllowedInstanceTypes: []string{"t3.*", "*.medium"}}
		}, "InvalidParameterValueException"},
		{"max vcpu 1", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{MaxVCpuCount: aws.Int32(1)}
		}, "ValidationException"},
		{"max vcpu 15001", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{MaxVCpuCount: aws.Int32(15001)}
		}, "ValidationException"},
		{"unknown mode", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{ScalingMode: "Turbo"}
		}, "ValidationException"},
		{"manual without policy", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{ScalingMode: types.CapacityProviderScalingModeManual}
		}, "InvalidParameterValueException"},
		{"auto with policy", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{ScalingPolicies: []types.TargetTrackingScalingPolicy{
				{PredefinedMetricType: types.CapacityProviderPredefinedMetricTypeLambdaCapacityProviderAverageCPUUtilization, TargetValue: aws.Float64(50)}}}
		}, "InvalidParameterValueException"},
		{"target over 100", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{ScalingMode: types.CapacityProviderScalingModeManual,
				ScalingPolicies: []types.TargetTrackingScalingPolicy{
					{PredefinedMetricType: types.CapacityProviderPredefinedMetricTypeLambdaCapacityProviderAverageCPUUtilization, TargetValue: aws.Float64(101)}}}
		}, "ValidationException"},
		{"memory metric", func(in *lambda.CreateCapacityProviderInput) {
			in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{ScalingMode: types.CapacityProviderScalingModeManual,
				ScalingPolicies: []types.TargetTrackingScalingPolicy{{PredefinedMetricType: "Memory", TargetValue: aws.Float64(50)}}}
		}, "ValidationException"},
		{"41 propagated tags", func(in *lambda.CreateCapacityProviderInput) {
			tags := map[string]string{}
			for i := range 41 {
				tags["k"+itoa(i)] = "v"
			}
			in.PropagateTags = &types.PropagateTags{Mode: types.PropagateTagsModeExplicit, ExplicitTags: tags}
		}, "ValidationException"},
		{"log level", func(in *lambda.CreateCapacityProviderInput) {
			in.TelemetryConfig = &types.CapacityProviderTelemetryConfig{LoggingConfig: &types.CapacityProviderLoggingConfig{SystemLogLevel: "TRACE"}}
		}, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := cpInput("v")
			tt.mutate(in)
			_, err := e.client.CreateCapacityProvider(ctx, in)
			errorCode(t, err, tt.code)
		})
	}
	// Without security groups, with an allowed family and Manual scaling: accepted.
	in := cpInput("ok")
	in.VpcConfig.SecurityGroupIds = []string{}
	in.InstanceRequirements = &types.InstanceRequirements{Architectures: []types.Architecture{"arm64"}, AllowedInstanceTypes: []string{"c7g.*", "m7g.large"}}
	in.CapacityProviderScalingConfig = &types.CapacityProviderScalingConfig{ScalingMode: types.CapacityProviderScalingModeManual,
		ScalingPolicies: []types.TargetTrackingScalingPolicy{
			{PredefinedMetricType: types.CapacityProviderPredefinedMetricTypeLambdaCapacityProviderAverageCPUUtilization, TargetValue: aws.Float64(70)}}}
	in.Tags = map[string]string{"env": "test"}
	cp := e.createCP(t, in, false)
	if cp.InstanceRequirements.Architectures[0] != types.ArchitectureArm64 || aws.ToInt32(cp.CapacityProviderScalingConfig.MaxVCpuCount) != 400 ||
		len(cp.VpcConfig.SecurityGroupIds) != 0 {
		t.Errorf("created %+v", cp)
	}
	tags, err := e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: cp.CapacityProviderArn})
	if err != nil || tags.Tags["env"] != "test" {
		t.Errorf("tags = %v, %v", tags, err)
	}
}

func TestCapacityProviderQuota(t *testing.T) {
	e := newEnvWithRegistry(t, registry.Config{CapacityProviderLimit: 2})
	ctx := context.Background()
	e.createCP(t, cpInput("a"), false)
	e.createCP(t, cpInput("b"), false)
	_, err := e.client.CreateCapacityProvider(ctx, cpInput("c"))
	if e := wantErr[*types.CapacityProviderLimitExceededException](t, err); aws.ToString(e.Message) != "The number of capacity providers in this account exceeds the limit of 2." {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	if _, err := e.client.DeleteCapacityProvider(ctx, &lambda.DeleteCapacityProviderInput{CapacityProviderName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	e.createCP(t, cpInput("c"), false)
}

// The tag operations accept capacity provider ARNs, and answer as AWS does for
// one that does not exist (recorded in test_lambda_api.snapshot.json).
func TestCapacityProviderTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), false)
	arn := aws.String(cpARN("cp"))
	if _, err := e.client.TagResource(ctx, &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UntagResource(ctx, &lambda.UntagResourceInput{Resource: arn, TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: arn})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"b": "2"}, got.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	missing := aws.String(cpARN("gone"))
	_, err = e.client.TagResource(ctx, &lambda.TagResourceInput{Resource: missing, Tags: map[string]string{"a": "1"}})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Capacity provider not found: "+cpARN("gone") {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.UntagResource(ctx, &lambda.UntagResourceInput{Resource: missing, TagKeys: []string{"a"}})
	wantErr[*types.ResourceNotFoundException](t, err)
	_, err = e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: missing})
	wantErr[*types.ResourceNotFoundException](t, err)
	_, err = e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(cpARN("cp") + ":alias")})
	validation(t, err)
}

// jsonOf is v's JSON as generic values, to diff SDK structs (which have unexported
// markers) field by field.
func jsonOf(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
