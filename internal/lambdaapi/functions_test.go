package lambdaapi

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

func TestFunctionLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zip := makeZip(t, map[string]string{"bootstrap": "v1"})
	in := createInput("fn", zip)
	in.MemorySize = aws.Int32(256)
	in.Timeout = aws.Int32(5)
	in.Description = aws.String("first")
	in.Environment = &types.Environment{Variables: map[string]string{"K": "V"}}
	in.Tags = map[string]string{"team": "a"}
	in.VpcConfig = &types.VpcConfig{SubnetIds: []string{"subnet-1"}, SecurityGroupIds: []string{"sg-1"}}
	layer, err := e.client.PublishLayerVersion(ctx, &lambda.PublishLayerVersionInput{LayerName: aws.String("l"),
		Content: &types.LayerVersionContentInput{ZipFile: makeZip(t, map[string]string{"lib/x": "x"})}})
	if err != nil {
		t.Fatal(err)
	}
	in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
	created, err := e.client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if created.State != types.StatePending || created.StateReasonCode != types.StateReasonCodeCreating {
		t.Errorf("create state = %s %s", created.State, created.StateReasonCode)
	}
	if got, want := aws.ToString(created.FunctionArn), "arn:aws:lambda:us-east-1:123456789012:function:fn"; got != want {
		t.Errorf("FunctionArn = %s, want %s", got, want)
	}
	if aws.ToInt64(&created.CodeSize) != int64(len(zip)) || aws.ToString(created.CodeSha256) == "" {
		t.Errorf("code fields: size %d sha %q", created.CodeSize, aws.ToString(created.CodeSha256))
	}
	if created.EphemeralStorage == nil || aws.ToInt32(created.EphemeralStorage.Size) != 512 ||
		created.TracingConfig == nil || created.TracingConfig.Mode != types.TracingModePassThrough ||
		created.LoggingConfig == nil || aws.ToString(created.LoggingConfig.LogGroup) != "/aws/lambda/fn" ||
		created.PackageType != types.PackageTypeZip || len(created.Architectures) != 1 || created.Architectures[0] != types.ArchitectureX8664 {
		t.Errorf("defaults not as Lambda returns them: %+v", created)
	}
	if created.VpcConfig == nil || created.VpcConfig.SubnetIds[0] != "subnet-1" || len(created.Layers) != 1 {
		t.Errorf("pass-through fields lost: vpc %+v layers %+v", created.VpcConfig, created.Layers)
	}

	got, err := e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	c := got.Configuration
	if c.State != types.StateActive || c.LastUpdateStatus != types.LastUpdateStatusSuccessful {
		t.Errorf("get state = %s / %s", c.State, c.LastUpdateStatus)
	}
	if aws.ToString(c.RevisionId) == aws.ToString(created.RevisionId) {
		t.Errorf("RevisionId unchanged from the create answer (Pending) to get (Active), as Lambda changes it")
	}
	if diff := cmp.Diff(map[string]string{"team": "a"}, got.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if aws.ToString(got.Code.RepositoryType) != "S3" {
		t.Errorf("RepositoryType = %s", aws.ToString(got.Code.RepositoryType))
	}
	resp, err := http.Get(aws.ToString(got.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(zip) {
		t.Fatalf("code download: %d, %d bytes", resp.StatusCode, len(body))
	}

	upd, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("fn"), MemorySize: aws.Int32(512), Description: aws.String("second"),
		RevisionId: c.RevisionId,
	})
	if err != nil {
		t.Fatal(err)
	}
	if upd.LastUpdateStatus != types.LastUpdateStatusInProgress || aws.ToInt32(upd.MemorySize) != 512 ||
		aws.ToString(upd.Description) != "second" || aws.ToString(upd.RevisionId) == aws.ToString(c.RevisionId) {
		t.Errorf("update result %+v", upd)
	}
	if upd.Environment == nil || upd.Environment.Variables["K"] != "V" {
		t.Errorf("untouched environment lost: %+v", upd.Environment)
	}
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("fn"), Timeout: aws.Int32(9), RevisionId: c.RevisionId,
	})
	wantErr[*types.PreconditionFailedException](t, err)

	zip2 := makeZip(t, map[string]string{"bootstrap": "v2"})
	code, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: zip2})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(code.CodeSha256) == aws.ToString(created.CodeSha256) || code.CodeSize != int64(len(zip2)) {
		t.Errorf("code not updated: %+v", code)
	}
	_, err = e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"), ZipFile: zip, RevisionId: aws.String("stale")})
	wantErr[*types.PreconditionFailedException](t, err)

	cfg, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(cfg.CodeSha256) != aws.ToString(code.CodeSha256) || aws.ToInt32(cfg.MemorySize) != 512 {
		t.Errorf("configuration %+v", cfg)
	}

	if _, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("fn")})
	nf := wantErr[*types.ResourceNotFoundException](t, err)
	if got, want := aws.ToString(nf.Message), "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	_, err = e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn")})
	wantErr[*types.ResourceNotFoundException](t, err)
}

func TestCreateFunctionValidation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxZippedCodeBytes = 4096; c.MaxUnzippedCodeBytes = 100000 })
	ctx := context.Background()
	good := makeZip(t, map[string]string{"bootstrap": "x"})
	big := makeZip(t, map[string]string{"big": strings.Repeat("a", 200000)}) // compresses well below 4 KB
	incompressible := make([]byte, 5000)
	for i := range incompressible {
		incompressible[i] = byte(i*7919 + i/3)
	}
	e.create(t, "exists")
	for _, tc := range []struct {
		name   string
		mutate func(*lambda.CreateFunctionInput)
		check  func(t *testing.T, err error)
	}{
		{"bad runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = "non-existent-runtime" }, func(t *testing.T, err error) {
			e := wantErr[*types.InvalidParameterValueException](t, err)
			if !strings.HasPrefix(aws.ToString(e.Message), "Value non-existent-runtime at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [") {
				t.Errorf("message %q", aws.ToString(e.Message))
			}
		}},
		{"unsupported runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimeJava21 }, invalidParam},
		{"memory too small", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(64) }, validation},
		{"memory too large", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(10241) }, invalidParam},
		{"timeout too long", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }, invalidParam},
		{"timeout zero", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(0) }, validation},
		{"reserved env", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x"}}
		}, func(t *testing.T, err error) {
			e := wantErr[*types.InvalidParameterValueException](t, err)
			if !strings.Contains(aws.ToString(e.Message), "Reserved keys used in this request: AWS_REGION") {
				t.Errorf("message %q", aws.ToString(e.Message))
			}
		}},
		{"env over 4KB", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"LARGE_VAR": strings.Repeat("x", 4097)}}
		}, invalidParam},
		{"two architectures", func(in *lambda.CreateFunctionInput) {
			in.Architectures = []types.Architecture{types.ArchitectureX8664, types.ArchitectureArm64}
		}, validation},
		{"bad architecture", func(in *lambda.CreateFunctionInput) { in.Architectures = []types.Architecture{"X86_64"} }, validation},
		{"bad role", func(in *lambda.CreateFunctionInput) { in.Role = aws.String("r1") }, func(t *testing.T, err error) {
			e := wantErr[smithy.APIError](t, err)
			if e.ErrorCode() != "ValidationException" || !strings.Contains(err.Error(), "Value 'r1' at 'role'") {
				t.Errorf("error %v", err)
			}
		}},
		{"bad name", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("my-function!") }, validation},
		{"name too long", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String(strings.Repeat("a", 65)) }, invalidParam},
		{"not a zip", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte("not a zip") }, func(t *testing.T, err error) {
			e := wantErr[*types.InvalidParameterValueException](t, err)
			if got := aws.ToString(e.Message); got != "Could not unzip uploaded file. Please check your file, then try to upload again." {
				t.Errorf("message %q", got)
			}
		}},
		{"unzipped too large", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = big }, func(t *testing.T, err error) {
			e := wantErr[*types.InvalidParameterValueException](t, err)
			if got := aws.ToString(e.Message); got != "Unzipped size must be smaller than 100000 bytes" {
				t.Errorf("message %q", got)
			}
		}},
		{"zipped too large", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = incompressible }, func(t *testing.T, err error) {
			e := wantErr[smithy.APIError](t, err)
			if e.ErrorCode() != "RequestEntityTooLargeException" || !strings.Contains(err.Error(), "Zipped size must be smaller than 4096 bytes") {
				t.Errorf("error %v", err)
			}
		}},
		{"weighted is not on create", func(in *lambda.CreateFunctionInput) {
			in.Code.S3Bucket = aws.String("b")
			in.Code.S3Key = aws.String("k")
			in.Code.ZipFile = nil
		}, invalidParam},
		{"exists", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("exists") }, func(t *testing.T, err error) {
			e := wantErr[*types.ResourceConflictException](t, err)
			if got := aws.ToString(e.Message); got != "Function already exist: exists" {
				t.Errorf("message %q", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := createInput("f", good)
			tc.mutate(in)
			_, err := e.client.CreateFunction(ctx, in)
			tc.check(t, err)
		})
	}
}

func invalidParam(t *testing.T, err error) {
	t.Helper()
	wantErr[*types.InvalidParameterValueException](t, err)
}

func validation(t *testing.T, err error) {
	t.Helper()
	e := wantErr[smithy.APIError](t, err)
	if e.ErrorCode() != "ValidationException" {
		t.Fatalf("code = %s (%v), want ValidationException", e.ErrorCode(), err)
	}
}

func TestListFunctionsPaging(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		e.create(t, n)
	}
	if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	var names []string
	p := lambda.NewListFunctionsPaginator(e.client, &lambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range out.Functions {
			names = append(names, aws.ToString(f.FunctionName))
			if f.State != "" || f.RuntimeVersionConfig != nil {
				t.Errorf("ListFunctions shows fields Lambda leaves out: %+v", f)
			}
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, names); diff != "" || pages != 3 {
		t.Errorf("pages %d, names (-want +got):\n%s", pages, diff)
	}
	all, err := e.client.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll})
	if err != nil {
		t.Fatal(err)
	}
	var arns []string
	for _, f := range all.Functions {
		if aws.ToString(f.FunctionName) == "c" {
			arns = append(arns, aws.ToString(f.FunctionArn))
		}
	}
	want := []string{"arn:aws:lambda:us-east-1:123456789012:function:c:$LATEST", "arn:aws:lambda:us-east-1:123456789012:function:c:1"}
	if diff := cmp.Diff(want, arns); diff != "" {
		t.Errorf("ALL versions (-want +got):\n%s", diff)
	}
	_, err = e.client.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: "invalid"})
	validation(t, err)
}

func TestNamesAndQualifiers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	arn := "arn:aws:lambda:us-east-1:123456789012:function:fn"
	for _, tc := range []struct {
		name, fn, qualifier string
		check               func(t *testing.T, err error)
	}{
		{"name", "fn", "", nil},
		{"full arn", arn, "", nil},
		{"partial arn", "123456789012:function:fn", "", nil},
		{"arn with latest", arn + ":$LATEST", "", nil},
		{"qualifier mismatch", arn + ":$LATEST", "1", func(t *testing.T, err error) {
			e := wantErr[*types.InvalidParameterValueException](t, err)
			if got := aws.ToString(e.Message); got != "The derived qualifier from the function name does not match the specified qualifier." {
				t.Errorf("message %q", got)
			}
		}},
		{"other region", "arn:aws:lambda:ap-southeast-1:123456789012:function:fn", "", func(t *testing.T, err error) {
			e := wantErr[*types.ResourceNotFoundException](t, err)
			if got := aws.ToString(e.Message); got != "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')" {
				t.Errorf("message %q", got)
			}
		}},
		{"invalid chars", "my-function!", "", validation},
		{"qualifier pattern", "fn", "invalid!", validation},
		{"qualifier too long", "fn", strings.Repeat("a", 129), validation},
		{"missing version", "fn", "1221", func(t *testing.T, err error) {
			e := wantErr[*types.ResourceNotFoundException](t, err)
			if got := aws.ToString(e.Message); got != "Function not found: "+arn+":1221" {
				t.Errorf("message %q", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &lambda.GetFunctionInput{FunctionName: aws.String(tc.fn)}
			if tc.qualifier != "" {
				in.Qualifier = aws.String(tc.qualifier)
			}
			_, err := e.client.GetFunction(ctx, in)
			if tc.check == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			tc.check(t, err)
		})
	}
}

func TestDeleteQualifiers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("fn")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn"), Qualifier: aws.String("$LATEST")})
	if e := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(e.Message) != "$LATEST version cannot be deleted without deleting the function." {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn"), Qualifier: aws.String("alias")})
	invalidParam(t, err)
	if _, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("fn"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	vs, err := e.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs.Versions) != 1 || aws.ToString(vs.Versions[0].Version) != "$LATEST" {
		t.Errorf("versions after deleting 1: %+v", vs.Versions)
	}
}

// A package of several MB goes through the object store in chunks and downloads intact.
func TestLargePackage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := make([]byte, 2<<20)
	x := uint32(1)
	for i := range data {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		data[i] = byte(x)
	}
	zip := makeZip(t, map[string]string{"bootstrap": string(data)})
	if _, err := e.client.CreateFunction(ctx, createInput("big", zip)); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	code, err := e.reg.Code(ctx, aws.ToString(got.Configuration.CodeSha256))
	if err != nil || string(code) != string(zip) {
		t.Fatalf("code from the registry: %d bytes, %v", len(code), err)
	}
	resp, err := http.Get(aws.ToString(got.Code.Location))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != string(zip) {
		t.Fatalf("download: %d bytes, want %d", len(body), len(zip))
	}
}

func TestOversizedCreateRequest(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRequestBytes = 1000 })
	in := createInput("fn", makeZip(t, map[string]string{"bootstrap": strings.Repeat("x", 2000)}))
	in.Code.ZipFile = append(in.Code.ZipFile, make([]byte, 1000)...)
	_, err := e.client.CreateFunction(context.Background(), in)
	apiErr := wantErr[smithy.APIError](t, err)
	if apiErr.ErrorCode() != "RequestEntityTooLargeException" || apiErr.ErrorMessage() != "Request must be smaller than 1000 bytes for the CreateFunction operation" {
		t.Fatalf("error %v", err)
	}
}

func TestUpdateCodeArchitecture(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	out, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"),
		ZipFile: makeZip(t, map[string]string{"bootstrap": "arm"}), Architectures: []types.Architecture{types.ArchitectureArm64}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Architectures) != 1 || out.Architectures[0] != types.ArchitectureArm64 {
		t.Errorf("architectures %v", out.Architectures)
	}
	_, err = e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"),
		ZipFile: makeZip(t, map[string]string{"bootstrap": "x"}), Architectures: []types.Architecture{"sparc"}})
	validation(t, err)
}
