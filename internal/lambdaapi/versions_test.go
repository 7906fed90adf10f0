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
)

func TestVersionsAndAliases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	created := e.create(t, "fn")
	fn := aws.String("fn")

	_, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn, CodeSha256: aws.String("somenonexistentsha256")})
	if e := wantErr[*types.InvalidParameterValueException](t, err); !strings.HasPrefix(aws.ToString(e.Message), "CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 in $LATEST (") {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn, RevisionId: aws.String("wrong")})
	if e := wantErr[*types.PreconditionFailedException](t, err); aws.ToString(e.Message) != "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	// The RevisionId of the Active function: the create answer's was the Pending one's.
	active, err := e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn, RevisionId: created.RevisionId})
	wantErr[*types.PreconditionFailedException](t, err)
	v1, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn, Description: aws.String("one"),
		CodeSha256: created.CodeSha256, RevisionId: active.Configuration.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v1.Version) != "1" || aws.ToString(v1.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:fn:1" ||
		aws.ToString(v1.Description) != "one" || v1.State != types.StateActive {
		t.Errorf("published %+v", v1)
	}
	again, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Fatalf("publishing an unchanged function = %v, %v; want version 1 again", again, err)
	}
	if _, err := e.client.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: fn,
		ZipFile: makeZip(t, map[string]string{"bootstrap": "v2"}), Publish: true}); err != nil {
		t.Fatal(err)
	}
	vs, err := e.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: fn})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs.Versions {
		got = append(got, aws.ToString(v.FunctionArn))
	}
	want := []string{
		"arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST",
		"arn:aws:lambda:us-east-1:123456789012:function:fn:1",
		"arn:aws:lambda:us-east-1:123456789012:function:fn:2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("versions (-want +got):\n%s", diff)
	}

	// Aliases.
	a, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String("1"), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(a.AliasArn) != "arn:aws:lambda:us-east-1:123456789012:function:fn:live" || aws.ToString(a.RevisionId) == "" {
		t.Errorf("alias %+v", a)
	}
	_, err = e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String("1")})
	if e := wantErr[*types.ResourceConflictException](t, err); aws.ToString(e.Message) != "Alias already exists: arn:aws:lambda:us-east-1:123456789012:function:fn:live" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("x"), FunctionVersion: aws.String("10")})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:10" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("2024"), FunctionVersion: aws.String("1")})
	validation(t, err)
	w, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("weighted"), FunctionVersion: aws.String("1"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.5}}})
	if err != nil || w.RoutingConfig == nil || w.RoutingConfig.AdditionalVersionWeights["2"] != 0.5 {
		t.Fatalf("weighted alias %+v %v", w, err)
	}
	_, err = e.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: fn, Name: aws.String("weighted"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.1}}})
	invalidParam(t, err) // the alias's own version
	if _, err := e.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: fn, Name: aws.String("weighted")}); err != nil {
		t.Fatal(err)
	}

	got1, err := e.client.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: fn, Name: aws.String("live")})
	if err != nil || aws.ToString(got1.FunctionVersion) != "1" {
		t.Fatalf("get alias %+v %v", got1, err)
	}
	_, err = e.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String("2"), RevisionId: aws.String("stale")})
	wantErr[*types.PreconditionFailedException](t, err)
	up, err := e.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String("2"), RevisionId: got1.RevisionId})
	if err != nil || aws.ToString(up.FunctionVersion) != "2" || aws.ToString(up.Description) != "d" {
		t.Fatalf("update alias %+v %v", up, err)
	}
	_, err = e.client.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: fn, Name: aws.String("non-existent"), FunctionVersion: aws.String("1")})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Alias not found: arn:aws:lambda:us-east-1:123456789012:function:fn:non-existent" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	if _, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("old"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: fn})
	if err != nil || len(list.Aliases) != 2 || aws.ToString(list.Aliases[0].Name) != "live" {
		t.Fatalf("list aliases %+v %v", list, err)
	}
	only1, err := e.client.ListAliases(ctx, &lambda.ListAliasesInput{FunctionName: fn, FunctionVersion: aws.String("1")})
	if err != nil || len(only1.Aliases) != 1 || aws.ToString(only1.Aliases[0].Name) != "old" {
		t.Fatalf("aliases of version 1: %+v %v", only1, err)
	}
	// GetFunction and Invoke through the alias.
	viaAlias, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: fn, Qualifier: aws.String("live")})
	if err != nil || aws.ToString(viaAlias.Version) != "2" {
		t.Fatalf("configuration through alias %+v %v", viaAlias, err)
	}
	_, err = e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn, Qualifier: aws.String("aliasdoesnotexist")})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:aliasdoesnotexist" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	// A version an alias points to cannot be deleted.
	_, err = e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: fn, Qualifier: aws.String("1")})
	wantErr[*types.ResourceConflictException](t, err)
	for _, name := range []string{"old", "old", "live"} { // deleting a missing alias succeeds
		if _, err := e.client.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: fn, Name: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.client.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: fn, Name: aws.String("live")})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:fn:live" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
}

func TestConcurrencyAndAccountSettings(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	e.create(t, "other")
	fn := aws.String("fn")

	got, err := e.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: fn})
	if err != nil || got.ReservedConcurrentExecutions != nil {
		t.Fatalf("default concurrency %+v %v", got, err)
	}
	put, err := e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: fn, ReservedConcurrentExecutions: aws.Int32(100)})
	if err != nil || aws.ToInt32(put.ReservedConcurrentExecutions) != 100 {
		t.Fatalf("put %+v %v", put, err)
	}
	_, err = e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("other"), ReservedConcurrentExecutions: aws.Int32(801)})
	if e := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(e.Message) != "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]." {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	if _, err := e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("other"), ReservedConcurrentExecutions: aws.Int32(800)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("fn:1"), ReservedConcurrentExecutions: aws.Int32(1)})
	invalidParam(t, err)
	_, err = e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String("doesnotexist"), ReservedConcurrentExecutions: aws.Int32(1)})
	if e := wantErr[*types.ResourceNotFoundException](t, err); aws.ToString(e.Message) != "Function not found: arn:aws:lambda:us-east-1:123456789012:function:doesnotexist:$LATEST" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	gf, err := e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn})
	if err != nil || gf.Concurrency == nil || aws.ToInt32(gf.Concurrency.ReservedConcurrentExecutions) != 100 {
		t.Fatalf("GetFunction concurrency %+v %v", gf.Concurrency, err)
	}
	as, err := e.client.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if as.AccountLimit.ConcurrentExecutions != 1000 || aws.ToInt32(as.AccountLimit.UnreservedConcurrentExecutions) != 100 ||
		as.AccountUsage.FunctionCount != 2 || as.AccountUsage.TotalCodeSize <= 0 || as.AccountLimit.CodeSizeZipped != 52428800 {
		t.Errorf("account settings %+v %+v", as.AccountLimit, as.AccountUsage)
	}
	if _, err := e.client.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: fn}); err != nil {
		t.Fatal(err)
	}
	got, err = e.client.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: fn})
	if err != nil || got.ReservedConcurrentExecutions != nil {
		t.Fatalf("after delete %+v %v", got, err)
	}
	n, _ := e.reg.SumReservedConcurrency(ctx)
	if n != 800 {
		t.Errorf("SumReservedConcurrency = %d, want 800", n)
	}
}

func TestProvisionedConcurrency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	fn := aws.String("fn")
	if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String("live"), FunctionVersion: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, fn, q string
		n           int32
		check       func(t *testing.T, err error)
		message     string
	}{
		{"latest", "fn", "$LATEST", 1, invalidParam, "Provisioned Concurrency Configs cannot be applied to unpublished function versions."},
		{"zero", "fn", "1", 0, validation, ""},
		{"missing alias", "fn", "noalias", 1, notFound, "Cannot find alias arn: arn:aws:lambda:us-east-1:123456789012:function:fn:noalias"},
		{"missing version", "fn", "10", 1, notFound, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:fn:10"},
		{"missing function", "doesnotexist", "1", 1, notFound, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:doesnotexist:1"},
		{"over unreserved", "fn", "1", 901, invalidParam, "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [100]."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
				FunctionName: aws.String(tc.fn), Qualifier: aws.String(tc.q), ProvisionedConcurrentExecutions: aws.Int32(tc.n)})
			tc.check(t, err)
			if tc.message != "" && !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %v, want message %q", err, tc.message)
			}
		})
	}
	_, err := e.client.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("live")})
	if e := wantErr[*types.ProvisionedConcurrencyConfigNotFoundException](t, err); aws.ToString(e.Message) != "No Provisioned Concurrency Config found for this function" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	put, err := e.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("live"), ProvisionedConcurrentExecutions: aws.Int32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if put.Status != types.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(put.RequestedProvisionedConcurrentExecutions) != 3 ||
		aws.ToInt32(put.AllocatedProvisionedConcurrentExecutions) != 0 || aws.ToString(put.LastModified) == "" {
		t.Errorf("put %+v", put)
	}
	_, err = e.client.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("1"), ProvisionedConcurrentExecutions: aws.Int32(1)})
	if e := wantErr[*types.ResourceConflictException](t, err); aws.ToString(e.Message) != "Version is pointed by a Provisioned Concurrency alias" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	// The router reports readiness through the registry.
	all, err := e.reg.ListProvisionedConcurrency(ctx)
	if err != nil || len(all) != 1 || all[0].Version != "1" || all[0].Qualifier != "live" {
		t.Fatalf("ListProvisionedConcurrency %+v %v", all, err)
	}
	if err := e.reg.SetProvisionedStatus(ctx, "fn", "live", 3, 3, "READY", ""); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("live")})
	if err != nil || got.Status != types.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(got.AvailableProvisionedConcurrentExecutions) != 3 {
		t.Fatalf("after READY %+v %v", got, err)
	}
	list, err := e.client.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: fn})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 ||
		aws.ToString(list.ProvisionedConcurrencyConfigs[0].FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:fn:live" {
		t.Fatalf("list %+v %v", list, err)
	}
	// Reserved concurrency below the provisioned total is refused.
	_, err = e.client.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: fn, ReservedConcurrentExecutions: aws.Int32(1)})
	if e := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(e.Message) != " ReservedConcurrentExecutions  1 should not be lower than function's total provisioned concurrency [3]." {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("$LATEST")})
	invalidParam(t, err)
	if _, err := e.client.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: fn, Qualifier: aws.String("1")}); err != nil {
		t.Fatalf("deleting a config that does not exist: %v", err)
	}
	list, err = e.client.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: fn})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 0 {
		t.Fatalf("list after delete %+v %v", list, err)
	}
}

func notFound(t *testing.T, err error) {
	t.Helper()
	wantErr[*types.ResourceNotFoundException](t, err)
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	arn := aws.String("arn:aws:lambda:us-east-1:123456789012:function:fn")
	if _, err := e.client.TagResource(ctx, &lambda.TagResourceInput{Resource: arn, Tags: map[string]string{"A": "a", "B": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UntagResource(ctx, &lambda.UntagResourceInput{Resource: arn, TagKeys: []string{"A", "nope"}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: arn})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"B": "b"}, got.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	_, err = e.client.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(*arn + ":1"), Tags: map[string]string{"A": "a"}})
	if e := wantErr[*types.InvalidParameterValueException](t, err); aws.ToString(e.Message) != "Tags on function aliases and versions are not supported. Please specify a function ARN." {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
	_, err = e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String("arn:aws:lambda:us-east-1:123456789012:function:doesnotexist")})
	notFound(t, err)
	_, err = e.client.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String("arn:aws:something")})
	validation(t, err)
}

func TestCreateWithPublish(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := createInput("fn", makeZip(t, map[string]string{"bootstrap": "x"}))
	in.Publish = true
	out, err := e.client.CreateFunction(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Version) != "1" || aws.ToString(out.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:fn" {
		t.Errorf("create with Publish returned version %s arn %s", aws.ToString(out.Version), aws.ToString(out.FunctionArn))
	}
	v, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn"), Qualifier: aws.String("1")})
	if err != nil || aws.ToString(v.CodeSha256) != aws.ToString(out.CodeSha256) {
		t.Fatalf("version 1: %+v %v", v, err)
	}
	again, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("fn")})
	if err != nil || aws.ToString(again.Version) != "1" {
		t.Fatalf("publishing right after a create with Publish: %v %v", again, err)
	}
}

// TestVersionPagesSurviveDeletes: when the version a marker points at is
// deleted, the next page starts at the version after it in list order
// ($LATEST, then 1, 2, …, 10, …), not at the next one in string order.
func TestVersionPagesSurviveDeletes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "many")
	fn := aws.String("many")
	for i := 1; i <= 12; i++ {
		if _, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: fn,
			Description: aws.String(fmt.Sprint("v", i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := e.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: fn, MaxItems: aws.Int32(10)})
	if err != nil || len(first.Versions) != 10 || aws.ToString(first.Versions[9].Version) != "9" || first.NextMarker == nil {
		t.Fatalf("first page: %d versions, next %v, %v", len(first.Versions), first.NextMarker, err)
	}
	if _, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: fn, Qualifier: aws.String("10")}); err != nil {
		t.Fatal(err)
	}
	second, err := e.client.ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: fn, MaxItems: aws.Int32(10),
		Marker: first.NextMarker})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range second.Versions {
		got = append(got, aws.ToString(v.Version))
	}
	if strings.Join(got, ",") != "11,12" || second.NextMarker != nil {
		t.Errorf("second page %v (next %v); want 11,12 and no more", got, second.NextMarker)
	}
	// The same across functions in ListFunctions(ALL).
	e.create(t, "many-more")
	all, err := e.client.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll, MaxItems: aws.Int32(11)})
	if err != nil || all.NextMarker == nil {
		t.Fatalf("ListFunctions: %v, %v", all, err)
	}
	last := all.Functions[len(all.Functions)-1]
	if aws.ToString(last.FunctionName) != "many" || aws.ToString(last.Version) != "11" {
		t.Fatalf("first page ends at %s:%s, want many:11", aws.ToString(last.FunctionName), aws.ToString(last.Version))
	}
	if _, err := e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: fn, Qualifier: aws.String("12")}); err != nil {
		t.Fatal(err)
	}
	rest, err := e.client.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: types.FunctionVersionAll, Marker: all.NextMarker})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range rest.Functions {
		names = append(names, aws.ToString(f.FunctionName)+":"+aws.ToString(f.Version))
	}
	if strings.Join(names, ",") != "many-more:$LATEST" {
		t.Errorf("second page of ListFunctions %v; want many-more:$LATEST only", names)
	}
}

// A weighted alias sends each invocation to its additional version with that
// version's weight as probability, and GetFunction shows the alias's own version.
// A version a weighted alias routes to cannot be deleted.
func TestWeightedAliasRouting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "fn")
	fn := aws.String("fn")
	for i := range 2 {
		if _, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: fn, Description: aws.String(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: fn}); err != nil {
			t.Fatal(err)
		}
	}
	ran := func(alias string, weight float64, n int) map[string]int {
		t.Helper()
		if _, err := e.client.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: fn, Name: aws.String(alias), FunctionVersion: aws.String("1"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": weight}}}); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for range n {
			out, err := e.client.Invoke(ctx, &lambda.InvokeInput{FunctionName: fn, Qualifier: aws.String(alias)})
			if err != nil {
				t.Fatal(err)
			}
			got[aws.ToString(out.ExecutedVersion)]++
		}
		return got
	}
	if got := ran("none", 0, 20); got["1"] != 20 {
		t.Errorf("weight 0 ran %v, want version 1 only", got)
	}
	if got := ran("all", 1, 20); got["2"] != 20 {
		t.Errorf("weight 1 ran %v, want version 2 only", got)
	}
	// Both versions run at weight 0.5 (a run of 200 missing one has probability 2^-199).
	if got := ran("half", 0.5, 200); got["1"] == 0 || got["2"] == 0 || got["1"]+got["2"] != 200 {
		t.Errorf("weight 0.5 ran %v, want both versions", got)
	}
	g, err := e.client.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: fn, Qualifier: aws.String("half")})
	if err != nil || aws.ToString(g.Configuration.Version) != "1" || aws.ToString(g.Configuration.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:fn:half" {
		t.Fatalf("GetFunction of the alias: %+v %v", g, err)
	}
	_, err = e.client.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: fn, Qualifier: aws.String("2")})
	if e := wantErr[*types.ResourceConflictException](t, err); aws.ToString(e.Message) != "Unable to delete version because the following aliases reference it: [all, half, none]" {
		t.Errorf("message %q", aws.ToString(e.Message))
	}
}
