package lambdaapi

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// GetRuntimeManagementConfig and PutRuntimeManagementConfig through the SDK: Auto
// by default, FunctionUpdate, Manual pinning the version's runtime build, per
// version, inherited by a published version, refused on an alias.
func TestRuntimeManagementConfig(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	arn := "arn:aws:lambda:us-east-1:123456789012:function:fn"
	got, err := e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if got.UpdateRuntimeOn != types.UpdateRuntimeOnAuto || aws.ToString(got.FunctionArn) != arn || got.RuntimeVersionArn != nil {
		t.Errorf("default: %+v", got)
	}
	cfg, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	current := aws.ToString(cfg.RuntimeVersionConfig.RuntimeVersionArn)

	put, err := e.client.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("fn"),
		UpdateRuntimeOn: types.UpdateRuntimeOnFunctionUpdate})
	if err != nil || put.UpdateRuntimeOn != types.UpdateRuntimeOnFunctionUpdate || put.RuntimeVersionArn != nil || aws.ToString(put.FunctionArn) != arn {
		t.Fatalf("FunctionUpdate: %+v %v", put, err)
	}
	if got, _ := e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("fn")}); got.UpdateRuntimeOn != types.UpdateRuntimeOnFunctionUpdate {
		t.Errorf("after FunctionUpdate: %+v", got)
	}

	pinned := "arn:aws:lambda:us-east-1::runtime:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	put, err = e.client.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("fn"),
		Qualifier: aws.String("$LATEST"), UpdateRuntimeOn: types.UpdateRuntimeOnManual, RuntimeVersionArn: aws.String(pinned)})
	if err != nil || put.UpdateRuntimeOn != types.UpdateRuntimeOnManual || aws.ToString(put.RuntimeVersionArn) != pinned ||
		aws.ToString(put.FunctionArn) != arn+":$LATEST" {
		t.Fatalf("Manual: %+v %v", put, err)
	}
	cfg, _ = e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if aws.ToString(cfg.RuntimeVersionConfig.RuntimeVersionArn) != pinned {
		t.Errorf("a Manual function runs %s, want the pinned %s", aws.ToString(cfg.RuntimeVersionConfig.RuntimeVersionArn), pinned)
	}
	// An update keeps the pin; a published version inherits it.
	if _, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), Description: aws.String("d")}); err != nil {
		t.Fatal(err)
	}
	v, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v.RuntimeVersionConfig.RuntimeVersionArn) != pinned {
		t.Errorf("version %s runs %s", aws.ToString(v.Version), aws.ToString(v.RuntimeVersionConfig.RuntimeVersionArn))
	}
	got, err = e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("fn"), Qualifier: v.Version})
	if err != nil || got.UpdateRuntimeOn != types.UpdateRuntimeOnManual || aws.ToString(got.RuntimeVersionArn) != pinned || aws.ToString(got.FunctionArn) != arn+":1" {
		t.Errorf("version 1: %+v %v", got, err)
	}
	// Back to Auto: the current build again, for $LATEST only.
	if _, err := e.client.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("fn"),
		UpdateRuntimeOn: types.UpdateRuntimeOnAuto}); err != nil {
		t.Fatal(err)
	}
	cfg, _ = e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if aws.ToString(cfg.RuntimeVersionConfig.RuntimeVersionArn) != current {
		t.Errorf("back on Auto, it runs %s, want %s", aws.ToString(cfg.RuntimeVersionConfig.RuntimeVersionArn), current)
	}
	if got, _ := e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("fn"), Qualifier: aws.String("1")}); got.UpdateRuntimeOn != types.UpdateRuntimeOnManual {
		t.Errorf("version 1 changed with $LATEST: %+v", got)
	}

	// Refusals.
	if _, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: aws.String("fn"), Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("fn"), Qualifier: aws.String("live")})
	if ip := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(ip.Message) != "The provided function name "+arn+":live is invalid. Aliases are not allowed." {
		t.Errorf("alias: %q", aws.ToString(ip.Message))
	}
	_, err = e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("fn"), Qualifier: aws.String("7")})
	if nf := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(nf.Message) != "Function not found: "+arn+":7" {
		t.Errorf("missing version: %q", aws.ToString(nf.Message))
	}
	_, err = e.client.GetRuntimeManagementConfig(ctx, &lambda.GetRuntimeManagementConfigInput{FunctionName: aws.String("nosuch")})
	wantErr[*types.ResourceNotFoundException](t, err)
	_, err = e.client.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("fn"), UpdateRuntimeOn: types.UpdateRuntimeOnManual})
	wantErr[*types.InvalidParameterValueException](t, err)
	_, err = e.client.PutRuntimeManagementConfig(ctx, &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("fn"),
		UpdateRuntimeOn: types.UpdateRuntimeOnAuto, RuntimeVersionArn: aws.String(pinned)})
	wantErr[*types.InvalidParameterValueException](t, err)
	for _, bad := range []struct{ mode, arn string }{{"Sometimes", ""}, {"Manual", "arn:aws:lambda:us-east-1:123456789012:function:x"}} {
		in := &lambda.PutRuntimeManagementConfigInput{FunctionName: aws.String("fn"), UpdateRuntimeOn: types.UpdateRuntimeOn(bad.mode)}
		if bad.arn != "" {
			in.RuntimeVersionArn = aws.String(bad.arn)
		}
		if _, err := e.client.PutRuntimeManagementConfig(ctx, in); err == nil || !strings.Contains(err.Error(), "ValidationException") {
			t.Errorf("%s %s: %v", bad.mode, bad.arn, err)
		}
	}
}
