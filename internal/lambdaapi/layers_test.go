package lambdaapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/go-cmp/cmp"

	"github.com/shoal-dev/shoal/internal/registry"
)

func (e *env) publishLayer(t testing.TB, in *lambda.PublishLayerVersionInput) *lambda.PublishLayerVersionOutput {
	t.Helper()
	out, err := e.client.PublishLayerVersion(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every layer operation through the AWS SDK for Go v2: publish, read by name and
// version and by ARN, list (filtered and paged), download, delete.
func TestLayerVersionLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zip := makeZip(t, map[string]string{"python/mod.py": "X = 1\n"})
	in := &lambda.PublishLayerVersionInput{
		LayerName: aws.String("deps"), Content: &types.LayerVersionContentInput{ZipFile: zip},
		Description: aws.String("shared deps"), LicenseInfo: aws.String("MIT"),
		CompatibleRuntimes:      []types.Runtime{types.RuntimePython312},
		CompatibleArchitectures: []types.Architecture{types.ArchitectureX8664},
	}
	v1 := e.publishLayer(t, in)
	if v1.Version != 1 || aws.ToString(v1.LayerArn) != "arn:aws:lambda:us-east-1:123456789012:layer:deps" ||
		aws.ToString(v1.LayerVersionArn) != "arn:aws:lambda:us-east-1:123456789012:layer:deps:1" ||
		v1.Content == nil || v1.Content.CodeSize != int64(len(zip)) || aws.ToString(v1.Content.CodeSha256) == "" ||
		aws.ToString(v1.Description) != "shared deps" || aws.ToString(v1.LicenseInfo) != "MIT" || aws.ToString(v1.CreatedDate) == "" {
		t.Fatalf("publish: %+v", v1)
	}
	// The same content again is a new version with the same CodeSha256.
	in.CompatibleRuntimes = []types.Runtime{types.RuntimeNodejs20x}
	in.CompatibleArchitectures = []types.Architecture{types.ArchitectureArm64}
	v2 := e.publishLayer(t, in)
	if v2.Version != 2 || aws.ToString(v2.Content.CodeSha256) != aws.ToString(v1.Content.CodeSha256) {
		t.Fatalf("second publish: version %d sha %s", v2.Version, aws.ToString(v2.Content.CodeSha256))
	}

	got, err := e.client.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(layerFields(v1.LayerVersionArn, v1.Version, v1.Content.CodeSha256, v1.CompatibleRuntimes),
		layerFields(got.LayerVersionArn, got.Version, got.Content.CodeSha256, got.CompatibleRuntimes)); diff != "" {
		t.Errorf("GetLayerVersion differs from the publish (-publish +get):\n%s", diff)
	}
	// By ARN; the layer ARN can stand for the name too.
	byArn, err := e.client.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: v2.LayerVersionArn})
	if err != nil || byArn.Version != 2 {
		t.Fatalf("GetLayerVersionByArn: %+v %v", byArn, err)
	}
	if _, err := e.client.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: v1.LayerArn, VersionNumber: aws.Int64(1)}); err != nil {
		t.Errorf("GetLayerVersion by layer ARN: %v", err)
	}

	// Content.Location serves the zip.
	resp, err := http.Get(aws.ToString(got.Content.Location))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(zip) {
		t.Errorf("download: %d, %d bytes", resp.StatusCode, len(body))
	}

	vs, err := e.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("deps")})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs.LayerVersions) != 2 || vs.LayerVersions[0].Version != 2 || vs.LayerVersions[1].Version != 1 {
		t.Fatalf("ListLayerVersions, newest first: %+v", vs.LayerVersions)
	}
	py, err := e.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("deps"), CompatibleRuntime: types.RuntimePython312})
	if err != nil || len(py.LayerVersions) != 1 || py.LayerVersions[0].Version != 1 {
		t.Errorf("ListLayerVersions for python3.12: %+v %v", py, err)
	}
	arm, err := e.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String("deps"), CompatibleArchitecture: types.ArchitectureArm64})
	if err != nil || len(arm.LayerVersions) != 1 || arm.LayerVersions[0].Version != 2 {
		t.Errorf("ListLayerVersions for arm64: %+v %v", arm, err)
	}

	e.publishLayer(t, &lambda.PublishLayerVersionInput{LayerName: aws.String("other"), Content: &types.LayerVersionContentInput{ZipFile: zip}})
	ls, err := e.client.ListLayers(ctx, &lambda.ListLayersInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Layers) != 2 || aws.ToString(ls.Layers[0].LayerName) != "deps" || ls.Layers[0].LatestMatchingVersion.Version != 2 ||
		aws.ToString(ls.Layers[1].LayerName) != "other" {
		t.Fatalf("ListLayers: %+v", ls.Layers)
	}
	lsPy, err := e.client.ListLayers(ctx, &lambda.ListLayersInput{CompatibleRuntime: types.RuntimePython312})
	if err != nil || len(lsPy.Layers) != 1 || lsPy.Layers[0].LatestMatchingVersion.Version != 1 {
		t.Errorf("ListLayers for python3.12 shows the latest matching version: %+v %v", lsPy, err)
	}
	// One item a page, with the SDK's paginator.
	var names []string
	for p := lambda.NewListLayersPaginator(e.client, &lambda.ListLayersInput{MaxItems: aws.Int32(1)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Layers {
			names = append(names, aws.ToString(l.LayerName))
		}
	}
	if strings.Join(names, ",") != "deps,other" {
		t.Errorf("paged ListLayers: %v", names)
	}
	var versions []int64
	for p := lambda.NewListLayerVersionsPaginator(e.client, &lambda.ListLayerVersionsInput{LayerName: aws.String("deps"), MaxItems: aws.Int32(1)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range page.LayerVersions {
			versions = append(versions, v.Version)
		}
	}
	if !cmp.Equal(versions, []int64{2, 1}) {
		t.Errorf("paged ListLayerVersions: %v", versions)
	}

	if _, err := e.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)})
	if nf := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(nf.Message) != "The resource you requested does not exist." {
		t.Errorf("deleted version: %q", aws.ToString(nf.Message))
	}
	// Deleting again, or what never existed, succeeds.
	if _, err := e.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Errorf("delete again: %v", err)
	}
	if _, err := e.client.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String("nosuch"), VersionNumber: aws.Int64(7)}); err != nil {
		t.Errorf("delete a layer that never existed: %v", err)
	}
	_, err = e.client.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String("deps"), VersionNumber: aws.Int64(0)})
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != "Layer Version Cannot be less than 1" {
		t.Errorf("version 0: %q", aws.ToString(ip.Message))
	}
}

type layerSummary struct {
	Arn      string
	Version  int64
	Sha      string
	Runtimes []types.Runtime
}

func layerFields(arn *string, v int64, sha *string, rts []types.Runtime) layerSummary {
	return layerSummary{aws.ToString(arn), v, aws.ToString(sha), rts}
}

// AddLayerVersionPermission, GetLayerVersionPolicy and RemoveLayerVersionPermission
// through the SDK: the statement and policy documents, their RevisionIds.
func TestLayerVersionPermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.publishLayer(t, &lambda.PublishLayerVersionInput{LayerName: aws.String("shared"),
		Content: &types.LayerVersionContentInput{ZipFile: makeZip(t, map[string]string{"bin/tool": "#!/bin/sh\n"})}})
	_, err := e.client.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	if nf := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(nf.Message) != "No policy is associated with the given resource." {
		t.Errorf("no policy: %q", aws.ToString(nf.Message))
	}
	add, err := e.client.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{
		LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("xaccount"),
		Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("210987654321"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(add.Statement)), &st); err != nil {
		t.Fatalf("statement %q: %v", aws.ToString(add.Statement), err)
	}
	want := map[string]any{"Sid": "xaccount", "Effect": "Allow", "Principal": map[string]any{"AWS": "arn:aws:iam::210987654321:root"},
		"Action": "lambda:GetLayerVersion", "Resource": "arn:aws:lambda:us-east-1:123456789012:layer:shared:1"}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("statement (-want +got):\n%s", diff)
	}
	org, err := e.client.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{
		LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("org"),
		Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*"), OrganizationId: aws.String("o-abcdefghij"),
		RevisionId: add.RevisionId,
	})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := e.client.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String("shared"), VersionNumber: aws.Int64(1)})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Id        string
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "2012-10-17" || doc.Id != "default" || len(doc.Statement) != 2 ||
		doc.Statement[1]["Condition"] == nil || aws.ToString(pol.RevisionId) != aws.ToString(org.RevisionId) {
		t.Errorf("policy %s, revision %s (last add %s)", aws.ToString(pol.Policy), aws.ToString(pol.RevisionId), aws.ToString(org.RevisionId))
	}
	_, err = e.client.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{
		LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("org"), RevisionId: add.RevisionId})
	wantErr[*types.PreconditionFailedException](t, err)
	if _, err := e.client.RemoveLayerVersionPermission(ctx, &lambda.RemoveLayerVersionPermissionInput{
		LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("org"), RevisionId: pol.RevisionId}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{
		LayerName: aws.String("shared"), VersionNumber: aws.Int64(1), StatementId: aws.String("bad"),
		Action: aws.String("lambda:*"), Principal: aws.String("*"),
	})
	if err == nil || !strings.Contains(err.Error(), "ValidationException") {
		t.Errorf("action other than lambda:GetLayerVersion: %v", err)
	}
	_, err = e.client.AddLayerVersionPermission(ctx, &lambda.AddLayerVersionPermissionInput{
		LayerName: aws.String("shared"), VersionNumber: aws.Int64(2), StatementId: aws.String("s"),
		Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*"),
	})
	if nf := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(nf.Message) != "Layer version arn:aws:lambda:us-east-1:123456789012:layer:shared:2 does not exist." {
		t.Errorf("missing version: %q", aws.ToString(nf.Message))
	}
}

// A function's layers: shown with their sizes, at most 5, one version per layer,
// each one that exists.
func TestFunctionLayers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var arns []string
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		out := e.publishLayer(t, &lambda.PublishLayerVersionInput{LayerName: aws.String(name),
			Content: &types.LayerVersionContentInput{ZipFile: makeZip(t, map[string]string{"lib/" + name: name})}})
		arns = append(arns, aws.ToString(out.LayerVersionArn))
	}
	zip := makeZip(t, map[string]string{"bootstrap": "x"})
	in := createInput("fn", zip)
	in.Layers = arns
	_, err := e.client.CreateFunction(ctx, in)
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != "Cannot reference more than 5 layers." {
		t.Errorf("six layers: %q", aws.ToString(ip.Message))
	}
	missing := "arn:aws:lambda:us-east-1:123456789012:layer:nosuch:1"
	in.Layers = []string{arns[0], missing}
	_, err = e.client.CreateFunction(ctx, in)
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != "Layer version "+missing+" does not exist." {
		t.Errorf("missing layer at create: %q", aws.ToString(ip.Message))
	}
	if _, err := e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("fn")}); err == nil {
		t.Fatal("a function refused for its layers was created")
	}
	in.Layers = arns[:2]
	created, err := e.client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Layers) != 2 || aws.ToString(created.Layers[0].Arn) != arns[0] || created.Layers[0].CodeSize == 0 {
		t.Errorf("created with layers %+v", created.Layers)
	}
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), Layers: []string{missing}})
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != "Layer version "+missing+" does not exist." {
		t.Errorf("missing layer at update: %q", aws.ToString(ip.Message))
	}
	v2 := e.publishLayer(t, &lambda.PublishLayerVersionInput{LayerName: aws.String("a"),
		Content: &types.LayerVersionContentInput{ZipFile: makeZip(t, map[string]string{"lib/a": "a2"})}})
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		Layers: []string{arns[0], aws.ToString(v2.LayerVersionArn)}})
	wantErr[*types.InvalidParameterValueException](t, err)
	up, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"),
		Layers: []string{aws.ToString(v2.LayerVersionArn)}})
	if err != nil || len(up.Layers) != 1 || aws.ToString(up.Layers[0].Arn) != aws.ToString(v2.LayerVersionArn) {
		t.Fatalf("update to a's version 2: %+v %v", up, err)
	}
	// The layers count in the account's code size.
	s, err := e.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var layerBytes int64
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		vs, _ := e.client.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String(name)})
		for _, v := range vs.LayerVersions {
			lv, _ := e.client.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: v.LayerVersionArn})
			layerBytes += lv.Content.CodeSize
		}
	}
	if s.AccountUsage.TotalCodeSize != layerBytes+int64(len(zip)) {
		t.Errorf("TotalCodeSize %d, want %d of layers and %d of code", s.AccountUsage.TotalCodeSize, layerBytes, len(zip))
	}
}

// The unzipped limit counts a function's code and its layers together, at create,
// at a code update and when layers are added.
func TestLayersUnzippedLimit(t *testing.T) {
	e := newEnvWithRegistry(t, registry.Config{MaxUnzippedCodeBytes: 1000})
	ctx := context.Background()
	layer := e.publishLayer(t, &lambda.PublishLayerVersionInput{LayerName: aws.String("big"),
		Content: &types.LayerVersionContentInput{ZipFile: makeZip(t, map[string]string{"lib/blob": strings.Repeat("x", 600)})}})
	in := createInput("fn", makeZip(t, map[string]string{"bootstrap": strings.Repeat("y", 500)}))
	in.Layers = []string{aws.ToString(layer.LayerVersionArn)}
	_, err := e.client.CreateFunction(ctx, in)
	want := "Function code combined with layers exceeds the maximum allowed size of 1000 bytes. The actual size is 1100 bytes."
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != want {
		t.Errorf("at create: %q", aws.ToString(ip.Message))
	}
	in.Code.ZipFile = makeZip(t, map[string]string{"bootstrap": strings.Repeat("y", 300)})
	if _, err := e.client.CreateFunction(ctx, in); err != nil {
		t.Fatalf("900 bytes in all: %v", err)
	}
	_, err = e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("fn"),
		ZipFile: makeZip(t, map[string]string{"bootstrap": strings.Repeat("y", 401)})})
	if ip := wantErr[*types.InvalidParameterValueException](t, err); !strings.Contains(aws.ToString(ip.Message), "The actual size is 1001 bytes.") {
		t.Errorf("at a code update: %q", aws.ToString(ip.Message))
	}
	e.create(t, "plain")
	if _, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("plain"),
		ZipFile: makeZip(t, map[string]string{"bootstrap": strings.Repeat("y", 500)})}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("plain"),
		Layers: []string{aws.ToString(layer.LayerVersionArn)}})
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != want {
		t.Errorf("adding the layer: %q", aws.ToString(ip.Message))
	}
}
