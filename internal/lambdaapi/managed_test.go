package lambdaapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/registry"
)

func managedInput(name, cp string, mutate func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionInput {
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimePython313,
		Role:         aws.String(testRole),
		Handler:      aws.String("app.handler"),
		Code:         &types.FunctionCode{ZipFile: nil},
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: aws.String(cpARN(cp)),
		}},
	}
	if mutate != nil {
		mutate(in)
	}
	return in
}

// createManaged creates a Managed Instances function on capacity provider cp.
func (e *env) createManaged(t testing.TB, name, cp string, mutate func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	t.Helper()
	in := managedInput(name, cp, mutate)
	if in.Code.ZipFile == nil {
		in.Code.ZipFile = makeZip(t, map[string]string{"app.py": "def handler(e, c): return e"})
	}
	out, err := e.client.CreateFunction(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func miConfig(t testing.TB, c *types.CapacityProviderConfig) *types.LambdaManagedInstancesCapacityProviderConfig {
	t.Helper()
	if c == nil || c.LambdaManagedInstancesCapacityProviderConfig == nil {
		t.Fatal("no CapacityProviderConfig")
	}
	return c.LambdaManagedInstancesCapacityProviderConfig
}

func TestManagedFunctionLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	fn := aws.String("mi")
	created := e.createManaged(t, "mi", "cp", nil)
	mi := miConfig(t, created.CapacityProviderConfig)
	if created.MemorySize == nil || *created.MemorySize != 2048 || aws.ToString(mi.CapacityProviderArn) != cpARN("cp") ||
		aws.ToInt32(mi.PerExecutionEnvironmentMaxConcurrency) != 16 || aws.ToFloat64(mi.ExecutionEnvironmentMemoryGiBPerVCpu) != 2 {
		t.Errorf("created memory %d, config %+v; want 2048 MB, 16 per environment (python, 1 vCPU), ratio 2", aws.ToInt32(created.MemorySize), mi)
	}
	latest, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn})
	if err != nil || latest.State != types.StateActiveNonInvocable {
		t.Fatalf("$LATEST = %v, %v; want ActiveNonInvocable", latest.State, err)
	}

	// Never published: NoPublishedVersionException.
	_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Payload: []byte(`{}`)})
	if e := wantErr[*types.NoPublishedVersionException](t, err); !strings.Contains(aws.ToString(e.Message), "has no published versions available") {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Qualifier: aws.String("$LATEST")})
	wantErr[*types.ResourceConflictException](t, err)

	// Publish to $LATEST.PUBLISHED: Pending until the control plane reports it Active.
	pub, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn, PublishTo: types.FunctionVersionLatestPublishedLatestPublished})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(pub.Version) != "$LATEST.PUBLISHED" || aws.ToString(pub.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:mi:$LATEST.PUBLISHED" ||
		pub.State != types.StatePending {
		t.Errorf("published %s %s %s", aws.ToString(pub.Version), aws.ToString(pub.FunctionArn), pub.State)
	}
	lp := aws.String("$LATEST.PUBLISHED")
	_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn})
	if e := wantErr[*types.ResourceConflictException](t, err); aws.ToString(e.Message) != "The operation cannot be performed at this time. The function is currently in the following state: Pending" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	mvs, err := e.reg.ListManagedVersions(ctx)
	if err != nil || len(mvs) != 1 {
		t.Fatalf("managed versions %+v, %v", mvs, err)
	}
	got := mvs[0]
	got.Version = nil
	if diff := cmp.Diff(registry.ManagedVersion{CapacityProvider: "cp", MinEnvironments: 3, MaxEnvironments: 15000, MaxConcurrency: 16,
		MemoryMB: 2048, VCPUs: 1, State: "Pending", StateReason: "The function is being created.", UpdateRuntimeOn: "Auto"}, got); diff != "" {
		t.Errorf("managed version (-want +got):\n%s", diff)
	}
	if err := e.reg.SetVersionState(ctx, "mi", registry.LatestPublished, registry.StateActive, ""); err != nil {
		t.Fatal(err)
	}
	cfg, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn, Qualifier: lp})
	if err != nil || cfg.State != types.StateActive || miConfig(t, cfg.CapacityProviderConfig).CapacityProviderArn == nil {
		t.Fatalf("$LATEST.PUBLISHED = %v, %v; want Active", cfg.State, err)
	}
	// An unqualified invocation runs $LATEST.PUBLISHED, and the invoker sees its config.
	out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Payload: []byte(`{"a":1}`)})
	if err != nil || aws.ToString(out.ExecutedVersion) != "$LATEST.PUBLISHED" || string(out.Payload) != `{"a":1}` {
		t.Fatalf("invoke = %+v, %v", out, err)
	}
	if req := e.inv.last(); req.Version.ManagedInstances() == nil || req.Version.ManagedInstances().CapacityProviderName() != "cp" {
		t.Errorf("invoker got %+v", req.Version)
	}
	if _, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Qualifier: lp}); err != nil {
		t.Fatal(err)
	}

	// Scaling config: requested and applied; min = max = 0 deactivates.
	sc, err := e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(sc.RequestedFunctionScalingConfig.MinExecutionEnvironments) != 3 || sc.RequestedFunctionScalingConfig.MaxExecutionEnvironments != nil ||
		sc.AppliedFunctionScalingConfig == nil || aws.ToInt32(sc.AppliedFunctionScalingConfig.MinExecutionEnvironments) != 3 ||
		aws.ToString(sc.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:mi:$LATEST.PUBLISHED" {
		t.Errorf("scaling config %+v %+v", sc.RequestedFunctionScalingConfig, sc.AppliedFunctionScalingConfig)
	}
	put, err := e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp,
		FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(0), MaxExecutionEnvironments: aws.Int32(0)}})
	if err != nil || put.FunctionState != types.StateDeactivating {
		t.Fatalf("put 0/0 = %v, %v; want Deactivating", put, err)
	}
	_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn})
	wantErr[*types.ResourceConflictException](t, err)
	if err := e.reg.SetVersionState(ctx, "mi", registry.LatestPublished, registry.StateDeactivated, ""); err != nil {
		t.Fatal(err)
	}
	cfg, err = e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn, Qualifier: lp})
	if err != nil || cfg.State != types.StateDeactivated {
		t.Fatalf("state %v, %v; want Deactivated", cfg.State, err)
	}
	sc, err = e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp})
	if err != nil || aws.ToInt32(sc.AppliedFunctionScalingConfig.MaxExecutionEnvironments) != 0 ||
		aws.ToInt32(sc.AppliedFunctionScalingConfig.MinExecutionEnvironments) != 0 || sc.AppliedFunctionScalingConfig.MaxExecutionEnvironments == nil {
		t.Fatalf("applied after deactivation %+v, %v", sc.AppliedFunctionScalingConfig, err)
	}
	put, err = e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp,
		FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(1), MaxExecutionEnvironments: aws.Int32(5)}})
	if err != nil || put.FunctionState != types.StatePending {
		t.Fatalf("reactivation = %v, %v; want Pending", put, err)
	}

	for _, tt := range []struct {
		name     string
		min, max *int32
		code     string
	}{
		{"min 0 with max", aws.Int32(0), aws.Int32(5), "InvalidParameterValueException"},
		{"min over max", aws.Int32(5), aws.Int32(2), "InvalidParameterValueException"},
		{"max below default min", nil, aws.Int32(2), "InvalidParameterValueException"},
		{"negative", aws.Int32(-1), nil, "ValidationException"},
		{"over 15000", nil, aws.Int32(15001), "ValidationException"},
	} {
		_, err := e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp,
			FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: tt.min, MaxExecutionEnvironments: tt.max}})
		t.Run(tt.name, func(t *testing.T) { errorCode(t, err, tt.code) })
	}
	_, err = e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: aws.String("$LATEST"),
		FunctionScalingConfig: &types.FunctionScalingConfig{}})
	validation(t, err)
	_, err = e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: fn, Qualifier: aws.String("7")})
	wantErr[*types.ResourceNotFoundException](t, err)

	// Republishing $LATEST.PUBLISHED with new code: a new revision, Pending again, and
	// its scaling config carries over.
	before := cfg.RevisionId
	up, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: fn,
		ZipFile: makeZip(t, map[string]string{"app.py": "def handler(e, c): return 2"}), PublishTo: types.FunctionVersionLatestPublishedLatestPublished})
	if err != nil || aws.ToString(up.Version) != "$LATEST.PUBLISHED" || aws.ToString(up.RevisionId) == aws.ToString(before) {
		t.Fatalf("republish = %+v, %v", up, err)
	}
	sc, err = e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: fn, Qualifier: lp})
	if err != nil || aws.ToInt32(sc.RequestedFunctionScalingConfig.MaxExecutionEnvironments) != 5 || sc.AppliedFunctionScalingConfig != nil {
		t.Fatalf("scaling after republish %+v %+v, %v", sc.RequestedFunctionScalingConfig, sc.AppliedFunctionScalingConfig, err)
	}
	cfg, err = e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn, Qualifier: lp})
	if err != nil || cfg.State != types.StatePending {
		t.Fatalf("state after republish %v, %v; want Pending", cfg.State, err)
	}

	// Numbered versions start with the defaults.
	v1, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn})
	if err != nil || aws.ToString(v1.Version) != "1" {
		t.Fatalf("publish = %v, %v", v1, err)
	}
	sc, err = e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: aws.String("mi:1"), Qualifier: aws.String("1")})
	if err != nil || aws.ToInt32(sc.RequestedFunctionScalingConfig.MinExecutionEnvironments) != 3 {
		t.Fatalf("version 1 scaling %+v, %v", sc, err)
	}
	vs, err := e.client.ListFunctionVersionsByCapacityProvider(ctx, &lambda.ListFunctionVersionsByCapacityProviderInput{
		CapacityProviderName: aws.String("cp"), MaxItems: aws.Int32(2)})
	if err != nil || len(vs.FunctionVersions) != 2 || vs.NextMarker == nil {
		t.Fatalf("versions by capacity provider %+v, %v", vs, err)
	}
	rest, err := e.client.ListFunctionVersionsByCapacityProvider(ctx, &lambda.ListFunctionVersionsByCapacityProviderInput{
		CapacityProviderName: aws.String("cp"), Marker: vs.NextMarker})
	if err != nil || len(rest.FunctionVersions) != 1 || aws.ToString(rest.FunctionVersions[0].FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:mi:1" ||
		rest.FunctionVersions[0].State != types.StatePending {
		t.Fatalf("second page %+v, %v", rest, err)
	}
	// The unqualified invocation still goes to $LATEST.PUBLISHED (Pending now).
	_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn})
	wantErr[*types.ResourceConflictException](t, err)
}

func TestCreateManagedFunctionWithPublishTo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	out := e.createManaged(t, "node", "cp", func(in *lambda.CreateFunctionInput) {
		in.Runtime = types.RuntimeNodejs22x
		in.Handler = aws.String("index.handler")
		in.MemorySize = aws.Int32(8192)
		in.PublishTo = types.FunctionVersionLatestPublishedLatestPublished
		in.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig.ExecutionEnvironmentMemoryGiBPerVCpu = aws.Float64(4)
	})
	if aws.ToString(out.Version) != "$LATEST.PUBLISHED" || aws.ToInt32(miConfig(t, out.CapacityProviderConfig).PerExecutionEnvironmentMaxConcurrency) != 128 {
		t.Errorf("created %s with %+v; want $LATEST.PUBLISHED, 64 × 2 vCPUs", aws.ToString(out.Version), miConfig(t, out.CapacityProviderConfig))
	}
	mvs, err := e.reg.ListManagedVersions(ctx)
	if err != nil || len(mvs) != 1 || mvs[0].VCPUs != 2 || mvs[0].MaxConcurrency != 128 || mvs[0].Version.Version != registry.LatestPublished {
		t.Fatalf("managed versions %+v, %v", mvs, err)
	}
	// Halving the memory keeps the concurrency at its (new) default; an explicit value stays.
	up, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("node"), MemorySize: aws.Int32(4096)})
	if err != nil || aws.ToInt32(miConfig(t, up.CapacityProviderConfig).PerExecutionEnvironmentMaxConcurrency) != 64 {
		t.Fatalf("update = %+v, %v; want 64", up, err)
	}
	up, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("node"),
		MemorySize: aws.Int32(16384),
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: aws.String(cpARN("cp")), PerExecutionEnvironmentMaxConcurrency: aws.Int32(10), ExecutionEnvironmentMemoryGiBPerVCpu: aws.Float64(8)}}})
	if err != nil || aws.ToInt32(miConfig(t, up.CapacityProviderConfig).PerExecutionEnvironmentMaxConcurrency) != 10 || aws.ToInt32(up.MemorySize) != 16384 {
		t.Fatalf("update = %+v, %v", up, err)
	}
	up, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("node"), Timeout: aws.Int32(30)})
	if err != nil || aws.ToInt32(miConfig(t, up.CapacityProviderConfig).PerExecutionEnvironmentMaxConcurrency) != 10 {
		t.Fatalf("update = %+v, %v", up, err)
	}
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("node"), MemorySize: aws.Int32(12000)})
	wantErr[*types.InvalidParameterValueException](t, err)
	// An on-demand function cannot become a Managed Instances function.
	e.create(t, "plain")
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("plain"),
		CapacityProviderConfig: &types.CapacityProviderConfig{LambdaManagedInstancesCapacityProviderConfig: &types.LambdaManagedInstancesCapacityProviderConfig{
			CapacityProviderArn: aws.String(cpARN("cp"))}}})
	wantErr[*types.InvalidParameterValueException](t, err)
	_, err = e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("plain"), PublishTo: types.FunctionVersionLatestPublishedLatestPublished})
	wantErr[*types.InvalidParameterValueException](t, err)
	_, err = e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("plain"), Qualifier: aws.String("1"),
		FunctionScalingConfig: &types.FunctionScalingConfig{}})
	wantErr[*types.ResourceNotFoundException](t, err)
}

func TestCreateManagedFunctionValidation(t *testing.T) {
	e := newEnv(t)
	e.createCP(t, cpInput("cp"), true)
	arm := cpInput("arm")
	arm.InstanceRequirements = &types.InstanceRequirements{Architectures: []types.Architecture{types.ArchitectureArm64}}
	e.createCP(t, arm, true)
	zip := makeZip(t, map[string]string{"app.py": "x"})
	mi := func(in *lambda.CreateFunctionInput) *types.LambdaManagedInstancesCapacityProviderConfig {
		return in.CapacityProviderConfig.LambdaManagedInstancesCapacityProviderConfig
	}
	tests := []struct {
		name   string
		mutate func(in *lambda.CreateFunctionInput)
		code   string
	}{
		{"concurrency 0", func(in *lambda.CreateFunctionInput) { mi(in).PerExecutionEnvironmentMaxConcurrency = aws.Int32(0) }, "ValidationException"},
		{"concurrency 1601", func(in *lambda.CreateFunctionInput) { mi(in).PerExecutionEnvironmentMaxConcurrency = aws.Int32(1601) }, "ValidationException"},
		{"concurrency over 64 per vCPU", func(in *lambda.CreateFunctionInput) { mi(in).PerExecutionEnvironmentMaxConcurrency = aws.Int32(65) }, "InvalidParameterValueException"},
		{"ratio 1", func(in *lambda.CreateFunctionInput) { mi(in).ExecutionEnvironmentMemoryGiBPerVCpu = aws.Float64(1) }, "ValidationException"},
		{"ratio 9", func(in *lambda.CreateFunctionInput) { mi(in).ExecutionEnvironmentMemoryGiBPerVCpu = aws.Float64(9) }, "ValidationException"},
		{"ratio 3", func(in *lambda.CreateFunctionInput) { mi(in).ExecutionEnvironmentMemoryGiBPerVCpu = aws.Float64(3) }, "InvalidParameterValueException"},
		{"memory below 2048", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(1024) }, "InvalidParameterValueException"},
		{"memory not a multiple", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(3072) }, "InvalidParameterValueException"},
		{"memory not a multiple of 4 GiB", func(in *lambda.CreateFunctionInput) {
			in.MemorySize = aws.Int32(6144)
			mi(in).ExecutionEnvironmentMemoryGiBPerVCpu = aws.Float64(4)
		}, "InvalidParameterValueException"},
		{"memory over 32768", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(34816) }, "ValidationException"},
		{"on-demand over 10240", func(in *lambda.CreateFunctionInput) {
			in.CapacityProviderConfig = nil
			in.MemorySize = aws.Int32(12288)
		}, "InvalidParameterValueException"},
		{"no such capacity provider", func(in *lambda.CreateFunctionInput) { mi(in).CapacityProviderArn = aws.String(cpARN("nope")) }, "InvalidParameterValueException"},
		{"capacity provider of another region", func(in *lambda.CreateFunctionInput) {
			mi(in).CapacityProviderArn = aws.String("arn:aws:lambda:eu-west-1:123456789012:capacity-provider:cp")
		}, "InvalidParameterValueException"},
		{"not an ARN", func(in *lambda.CreateFunctionInput) { mi(in).CapacityProviderArn = aws.String("cp") }, "ValidationException"},
		{"runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimePython312 }, "InvalidParameterValueException"},
		{"architecture", func(in *lambda.CreateFunctionInput) { in.Architectures = []types.Architecture{types.ArchitectureArm64} }, "InvalidParameterValueException"},
		{"default architecture on arm64", func(in *lambda.CreateFunctionInput) { mi(in).CapacityProviderArn = aws.String(cpARN("arm")) }, "InvalidParameterValueException"},
		{"PublishTo without capacity provider", func(in *lambda.CreateFunctionInput) {
			in.CapacityProviderConfig = nil
			in.PublishTo = types.FunctionVersionLatestPublishedLatestPublished
		}, "InvalidParameterValueException"},
		{"PublishTo unknown", func(in *lambda.CreateFunctionInput) { in.PublishTo = "EVERYWHERE" }, "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := managedInput("v", "cp", tt.mutate)
			in.Code.ZipFile = zip
			_, err := e.client.CreateFunction(context.Background(), in)
			errorCode(t, err, tt.code)
		})
	}
	// Accepted at the edges: 32768 MB at 2:1 (16 vCPU), arm64 on an arm64 provider.
	e.createManaged(t, "big", "cp", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(32768) })
	e.createManaged(t, "arm", "arm", func(in *lambda.CreateFunctionInput) {
		in.Architectures = []types.Architecture{types.ArchitectureArm64}
		in.Runtime = types.RuntimeProvidedal2023
		in.Handler = aws.String("bootstrap")
	})
}

func TestVersionsPerCapacityProviderQuota(t *testing.T) {
	e := newEnvWithRegistry(t, registry.Config{VersionsPerCapacityProvider: 2})
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	e.createManaged(t, "a", "cp", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	e.createManaged(t, "b", "cp", func(in *lambda.CreateFunctionInput) {
		in.PublishTo = types.FunctionVersionLatestPublishedLatestPublished
	})
	// Republishing in place and publishing an unchanged function add nothing.
	if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("a")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("b"),
		ZipFile: makeZip(t, map[string]string{"app.py": "v2"}), PublishTo: types.FunctionVersionLatestPublishedLatestPublished}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("a"),
		ZipFile: makeZip(t, map[string]string{"app.py": "v2"}), Publish: true})
	if e := wantErr[*types.FunctionVersionsPerCapacityProviderLimitExceededException](t, err); !strings.Contains(aws.ToString(e.Message), "exceeds the limit of 2") {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	in := managedInput("c", "cp", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	in.Code.ZipFile = makeZip(t, map[string]string{"app.py": "c"})
	_, err = e.client.CreateFunction(ctx, in)
	wantErr[*types.FunctionVersionsPerCapacityProviderLimitExceededException](t, err)
}

func TestManagedFunctionRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	e.createManaged(t, "mi", "cp", func(in *lambda.CreateFunctionInput) {
		in.PublishTo = types.FunctionVersionLatestPublishedLatestPublished
	})
	fn := aws.String("mi")
	_, err := e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: fn, ReservedConcurrentExecutions: aws.Int32(5)})
	wantErr[*types.InvalidParameterValueException](t, err)
	_, err = e.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: fn,
		Qualifier: aws.String("$LATEST.PUBLISHED"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	wantErr[*types.InvalidParameterValueException](t, err)
	// Aliases may point at $LATEST.PUBLISHED; invoking one runs it once Active.
	if _, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("live"),
		FunctionVersion: aws.String("$LATEST.PUBLISHED")}); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetVersionState(ctx, "mi", registry.LatestPublished, registry.StateActive, ""); err != nil {
		t.Fatal(err)
	}
	out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Qualifier: aws.String("live")})
	if err != nil || aws.ToString(out.ExecutedVersion) != "$LATEST.PUBLISHED" {
		t.Fatalf("invoke via alias = %+v, %v", out, err)
	}
	// $LATEST.PUBLISHED can be deleted like a version; then nothing is published.
	if _, err := e.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: fn, Name: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: fn, Qualifier: aws.String("$LATEST.PUBLISHED")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn})
	wantErr[*types.NoPublishedVersionException](t, err)
}

// TestManagedUpdateResponsesShowState: the answers of UpdateFunctionConfiguration
// and UpdateFunctionCode show a Managed Instances function's state as
// GetFunctionConfiguration does: $LATEST is ActiveNonInvocable, and a version
// just published is Pending until its environments are up.
func TestManagedUpdateResponsesShowState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	e.createManaged(t, "mi", "cp", nil)
	fn := aws.String("mi")
	up, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: fn, Description: aws.String("x")})
	if err != nil || up.State != types.StateActiveNonInvocable || up.LastUpdateStatus != types.LastUpdateStatusInProgress {
		t.Fatalf("update configuration = %v / %v, %v; want ActiveNonInvocable / InProgress", up.State, up.LastUpdateStatus, err)
	}
	zip := makeZip(t, map[string]string{"app.py": "def handler(e, c): return 1"})
	code, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: fn, ZipFile: zip})
	if err != nil || code.State != types.StateActiveNonInvocable {
		t.Fatalf("update code = %v, %v; want ActiveNonInvocable", code.State, err)
	}
	dry, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: fn, ZipFile: zip, DryRun: true})
	if err != nil || dry.State != types.StateActiveNonInvocable {
		t.Fatalf("dry run = %v, %v; want ActiveNonInvocable", dry.State, err)
	}
	pub, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: fn, ZipFile: makeZip(t, map[string]string{"app.py": "def handler(e, c): return 2"}),
		PublishTo: types.FunctionVersionLatestPublishedLatestPublished})
	if err != nil || aws.ToString(pub.Version) != registry.LatestPublished || pub.State != types.StatePending {
		t.Fatalf("update code to $LATEST.PUBLISHED = %s %v, %v; want Pending", aws.ToString(pub.Version), pub.State, err)
	}
	got, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn, Qualifier: pub.Version})
	if err != nil || got.State != pub.State {
		t.Errorf("GetFunctionConfiguration says %v, %v; the update said %v", got.State, err, pub.State)
	}
}

// TestScalingConfigOmittedValuesRevert: a value left out of a put reverts to its
// default (min 3, no max), and the requested config shows the minimum that applies.
func TestScalingConfigOmittedValuesRevert(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	e.createManaged(t, "mi", "cp", func(in *lambda.CreateFunctionInput) { in.Publish = true })
	fn, q := aws.String("mi"), aws.String("1")
	for _, tc := range []struct {
		put      *types.FunctionScalingConfig
		min, max int32 // max 0: none
	}{
		{&types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(5), MaxExecutionEnvironments: aws.Int32(9)}, 5, 9},
		{&types.FunctionScalingConfig{MaxExecutionEnvironments: aws.Int32(5)}, 3, 5},
		{&types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(4)}, 4, 0},
		{&types.FunctionScalingConfig{}, 3, 0},
		{nil, 3, 0},
	} {
		if _, err := e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: q,
			FunctionScalingConfig: tc.put}); err != nil {
			t.Fatal(err)
		}
		got, err := e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: fn, Qualifier: q})
		if err != nil {
			t.Fatal(err)
		}
		req := got.RequestedFunctionScalingConfig
		if req == nil || aws.ToInt32(req.MinExecutionEnvironments) != tc.min || aws.ToInt32(req.MaxExecutionEnvironments) != tc.max ||
			(tc.max == 0) != (req.MaxExecutionEnvironments == nil) {
			t.Errorf("put %s: requested %s; want min %d, max %d", scalingString(tc.put), scalingString(req), tc.min, tc.max)
		}
	}
	// A minimum left out reverts to 3, which a maximum below it contradicts.
	_, err := e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: fn, Qualifier: q,
		FunctionScalingConfig: &types.FunctionScalingConfig{MaxExecutionEnvironments: aws.Int32(2)}})
	wantErr[*types.InvalidParameterValueException](t, err)
}

func scalingString(c *types.FunctionScalingConfig) string {
	if c == nil {
		return "none"
	}
	f := func(p *int32) string {
		if p == nil {
			return "unset"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{min %s, max %s}", f(c.MinExecutionEnvironments), f(c.MaxExecutionEnvironments))
}
