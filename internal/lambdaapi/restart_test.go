package lambdaapi

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/bus"
	"github.com/shoal-dev/shoal/internal/registry"
)

// Functions, versions, aliases and concurrency created through the API are all there
// after the bus and registry stop and start again on the same data directory.
func TestRestartThroughAPI(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() (*lambda.Client, func()) {
		b, err := bus.Start(ctx, bus.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := registry.Open(ctx, b.JetStream(), registry.Config{})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(New(Config{}, reg, &fakeInvoker{}, nil))
		client := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1})
		return client, func() { srv.Close(); reg.Close(); b.Close() }
	}
	c, stop := start()
	fn := aws.String("fn")
	_, err := c.CreateFunction(ctx, createInput("fn", makeZip(t, map[string]string{"bootstrap": "x"})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: fn, ReservedConcurrentExecutions: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	before, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn})
	if err != nil {
		t.Fatal(err)
	}
	stop()

	c, stop = start()
	defer stop()
	got, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Configuration.RevisionId) != aws.ToString(before.Configuration.RevisionId) || aws.ToInt32(got.Concurrency.ReservedConcurrentExecutions) != 7 {
		t.Errorf("after restart: %+v %+v", got.Configuration, got.Concurrency)
	}
	a, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: fn, Name: aws.String("live")})
	if err != nil || aws.ToString(a.FunctionVersion) != "1" {
		t.Fatalf("alias after restart: %+v %v", a, err)
	}
	out, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Qualifier: aws.String("live"), Payload: []byte(`1`)})
	if err != nil || aws.ToString(out.ExecutedVersion) != "1" {
		t.Fatalf("invoke after restart: %+v %v", out, err)
	}
	v2, err := c.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn, Description: aws.String("changed")})
	if err != nil || aws.ToString(v2.Version) != "1" {
		t.Fatalf("unchanged function after restart published %v, %v; want version 1 again", v2, err)
	}
}

// Capacity providers (with their reported state), Managed Instances versions (with
// theirs) and scaling configs are all there after a restart.
func TestManagedInstancesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	start := func() (*env, func()) {
		b, err := bus.Start(ctx, bus.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		reg, err := registry.Open(ctx, b.JetStream(), registry.Config{})
		if err != nil {
			t.Fatal(err)
		}
		inv := &fakeInvoker{}
		srv := httptest.NewServer(New(Config{}, reg, inv, nil))
		client := lambda.New(lambda.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1})
		return &env{reg: reg, inv: inv, client: client, url: srv.URL}, func() { srv.Close(); reg.Close(); b.Close() }
	}
	e, stop := start()
	e.createCP(t, cpInput("cp"), true)
	e.createCP(t, cpInput("pending"), false)
	e.createManaged(t, "mi", "cp", func(in *lambda.CreateFunctionInput) {
		in.PublishTo = types.FunctionVersionLatestPublishedLatestPublished
	})
	lp := aws.String(registry.LatestPublished)
	if _, err := e.client.PutFunctionScalingConfig(ctx, &lambda.PutFunctionScalingConfigInput{FunctionName: aws.String("mi"), Qualifier: lp,
		FunctionScalingConfig: &types.FunctionScalingConfig{MinExecutionEnvironments: aws.Int32(4), MaxExecutionEnvironments: aws.Int32(9)}}); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetVersionState(ctx, "mi", registry.LatestPublished, registry.StateActive, ""); err != nil {
		t.Fatal(err)
	}
	stop()

	e, stop = start()
	defer stop()
	for name, want := range map[string]types.CapacityProviderState{"cp": types.CapacityProviderStateActive, "pending": types.CapacityProviderStatePending} {
		got, err := e.client.GetCapacityProvider(ctx, &lambda.GetCapacityProviderInput{CapacityProviderName: aws.String(name)})
		if err != nil || got.CapacityProvider.State != want {
			t.Fatalf("%s after restart: %+v, %v", name, got, err)
		}
	}
	sc, err := e.client.GetFunctionScalingConfig(ctx, &lambda.GetFunctionScalingConfigInput{FunctionName: aws.String("mi"), Qualifier: lp})
	if err != nil || aws.ToInt32(sc.RequestedFunctionScalingConfig.MinExecutionEnvironments) != 4 ||
		aws.ToInt32(sc.AppliedFunctionScalingConfig.MaxExecutionEnvironments) != 9 {
		t.Fatalf("scaling config after restart: %+v, %v", sc, err)
	}
	out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("mi")})
	if err != nil || aws.ToString(out.ExecutedVersion) != registry.LatestPublished {
		t.Fatalf("invoke after restart: %+v, %v", out, err)
	}
	_, err = e.client.DeleteCapacityProvider(ctx, &lambda.DeleteCapacityProviderInput{CapacityProviderName: aws.String("cp")})
	wantErr[*types.ResourceConflictException](t, err)
}
