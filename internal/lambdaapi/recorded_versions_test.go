package lambdaapi

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Versions, aliases and RevisionIds.
var versionScenarios = []recordedScenario{
	{id: "TestLambdaVersions::test_publish_version_on_create", run: func(r *replay) {
		name := r.name("fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Publish = true }))
		r.getFunction("get_function_result", name)
		r.getFunction("get_function_version_result", name, "1")
		r.getFunction("get_function_latest_result", name, "$LATEST")
		r.listVersions("list_versions_result", name)
		r.publish("repeated_publish_response", &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String("Repeated version description :)")})
		r.listVersions("list_versions_result_after_publish", name)
	}},
	{id: "TestLambdaVersions::test_version_lifecycle", run: func(r *replay) {
		name := r.name("fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("No version :(") }))
		r.getFunction("get_function_result", name)
		r.listVersions("list_versions_result", name)
		r.updateConfiguration("first_update_response", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Description: aws.String("First version :)")})
		r.getFunction("first_update_get_function", name)
		first := r.publish("first_publish_response", &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String("First version description :)")})
		v := field(first, "Version")
		r.getFunction("first_publish_get_function", name, v)
		r.getConfiguration("first_publish_get_function_config", name, v)
		r.updateConfiguration("second_update_response", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Description: aws.String("Second version :))")})
		r.getFunction("first_publish_get_function_after_update", name, v)
		r.publish("second_publish_response", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		r.publish("third_publish_response", &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String("Third version description :)))")})
		r.listVersions("list_versions_result_after_third_publish", name)
		r.ok(r.deleteFunction("", name+":"+v))
		r.listVersions("list_versions_result_after_deletion_of_first_version", name)
	}},
	{id: "TestLambdaVersions::test_publish_with_wrong_revisionid", run: func(r *replay) {
		// An earlier revision of the test (LocalStack d6171629f^), on python3.9.
		name := r.name("fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Runtime = types.RuntimePython39 }))
		got := r.getFunction("get_fn_response", name)
		r.publish("publish_wrong_revisionid_exc", &lambda.PublishVersionInput{FunctionName: aws.String(name), RevisionId: aws.String("doesntexist")})
		r.publish("publish_result", &lambda.PublishVersionInput{FunctionName: aws.String(name), RevisionId: aws.String(field(got, "Configuration", "RevisionId"))})
	}, ignore: map[string]string{
		"LoggingConfig":        "recorded in 2022, before Lambda's answers carried it (test_publish_with_wrong_sha256, recorded in 2025, has it)",
		"RuntimeVersionConfig": "recorded in 2022, before Lambda's answers carried it (test_publish_with_wrong_sha256, recorded in 2025, has it)",
		"SnapStart":            "recorded in 2022, before Lambda's answers carried it (test_publish_with_wrong_sha256, recorded in 2025, has it)",
	}},
	{id: "TestLambdaVersions::test_publish_with_wrong_sha256", run: func(r *replay) {
		name := r.name("fn")
		r.create("create_response", r.awsInput(name))
		got := r.getFunction("get_fn_response", name)
		r.publish("publish_wrong_sha256_exc", &lambda.PublishVersionInput{FunctionName: aws.String(name), CodeSha256: aws.String("somenonexistentsha256")})
		r.publish("publish_result", &lambda.PublishVersionInput{FunctionName: aws.String(name), CodeSha256: aws.String(field(got, "Configuration", "CodeSha256"))})
	}},
	{id: "TestLambdaVersions::test_publish_with_update", run: func(r *replay) {
		name := r.name("fn")
		r.create("create_response", r.awsInput(name))
		r.getFunction("get_function_result", name)
		r.updateCode("update_function_code_result", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: versionZip(r.t), Publish: true})
		r.checkVersionRevision(name, "1", "update_function_code_result")
		r.checkLatestUpdated(name, "update_function_code_result")
	}, skip: map[string]string{
		"get_function_version_result": "AWS was still creating version 1 when it was read (State Pending); shoal publishes before it answers, so the version reads Active (its RevisionId is checked against the update's answer instead)",
		"get_function_latest_result":  "AWS was still applying the code update when $LATEST was read (LastUpdateStatus InProgress); shoal applies it before it answers (the new CodeSha256 and a new RevisionId are checked instead)",
	}},
	{id: "TestLambdaRevisions::test_function_revisions_basic", run: func(r *replay) {
		name := r.name("fn")
		zip := echoZip(r.t)
		r.fixtureCreate("create_function_response_rev1", name, func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile, in.Handler = zip, aws.String("index.handler")
		})
		rev2 := field(r.getFunction("get_function_response_rev2", name), "Configuration", "RevisionId")
		r.updateCode("update_function_revision_exception", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zip, RevisionId: aws.String("wrong")})
		r.updateCode("update_function_code_response_rev3", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zip, RevisionId: aws.String(rev2)})
		rev4 := field(r.getFunction("get_function_response_rev4", name), "Configuration", "RevisionId")
		r.updateConfiguration("update_function_configuration_revision_exception", &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name), Runtime: types.RuntimePython38, RevisionId: aws.String("wrong"),
		})
		r.updateConfiguration("update_function_configuration_response_rev5", &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name), Runtime: types.RuntimePython38, RevisionId: aws.String(rev4),
		})
		r.getFunction("get_function_response_rev6", name)
	}},
	{id: "TestLambdaRevisions::test_function_revisions_version_and_alias", run: func(r *replay) {
		name := r.name("fn")
		r.fixtureCreate("create_function_response_rev1", name)
		rev2 := field(r.getFunction("get_function_active_rev2", name), "Configuration", "RevisionId")
		r.publish("publish_version_revision_exception", &lambda.PublishVersionInput{FunctionName: aws.String(name), RevisionId: aws.String("wrong")})
		v := field(r.publish("publish_version_response_rev_v1", &lambda.PublishVersionInput{FunctionName: aws.String(name), RevisionId: aws.String(rev2)}), "Version")
		r.getFunction("get_function_published_version_rev_v2", name, v)
		r.getFunction("get_function_latest_rev3", name)
		a1 := field(r.createAlias("create_alias_response_rev_a1", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("revision_alias"), FunctionVersion: aws.String(v)}), "RevisionId")
		r.getFunction("get_function_latest_rev4", name)
		r.getFunction("get_function_published_version_rev_v3", name, v)
		r.updateAlias("update_alias_revision_exception", &lambda.UpdateAliasInput{FunctionName: aws.String(name), Name: aws.String("revision_alias"), RevisionId: aws.String("wrong")})
		r.updateAlias("update_alias_response_rev_a2", &lambda.UpdateAliasInput{
			FunctionName: aws.String(name), Name: aws.String("revision_alias"), Description: aws.String("something changed"), RevisionId: aws.String(a1),
		})
	}},
	{id: "TestLambdaAlias::test_alias_lifecycle", run: func(r *replay) {
		name := r.name("alias-fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"testenv": "staging"}}
		}))
		r.publish("publish_v1", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		r.ok(r.updateConfiguration("", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Environment: &types.Environment{Variables: map[string]string{"testenv": "prod"}}}))
		r.publish("publish_v2", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		a11 := r.createAlias("create_alias_1_1", &lambda.CreateAliasInput{
			FunctionName: aws.String(name), Name: aws.String("aliasname1_1"), FunctionVersion: aws.String("1"), Description: aws.String("custom-alias"),
			RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"2": 0.2}},
		})
		r.getAlias("get_alias_1_1", name, "aliasname1_1")
		r.getFunction("get_function_alias_1_1", name, "aliasname1_1")
		r.getFunction("get_function_byarn_alias_1_1", field(a11, "AliasArn"))
		r.getFunction("get_function_alias_notfound_exc", name, "aliasdoesnotexist")
		r.getFunction("get_function_alias_byarn_notfound_exc", r.arn(name)+":aliasdoesnotexist")
		r.createAlias("create_alias_1_2", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("aliasname1_2"), FunctionVersion: aws.String("1"), Description: aws.String("custom-alias")})
		r.getAlias("get_alias_1_2", name, "aliasname1_2")
		r.createAlias("create_alias_1_3", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("aliasname1_3"), FunctionVersion: aws.String("1")})
		r.getAlias("get_alias_1_3", name, "aliasname1_3")
		r.createAlias("create_alias_2", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("aliasname2"), FunctionVersion: aws.String("2"), Description: aws.String("custom-alias")})
		r.getAlias("get_alias_2", name, "aliasname2")
		r.record("list_aliases_for_fnname", r.listAllAliases(name))
		r.updateAlias("update_alias_1_1", &lambda.UpdateAliasInput{
			FunctionName: aws.String(name), Name: aws.String("aliasname1_1"), RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{}},
		})
		r.getAlias("get_alias_1_1_after_update", name, "aliasname1_1")
		r.listAliases("list_aliases_for_fnname_after_update", &lambda.ListAliasesInput{FunctionName: aws.String(name)})
		r.updateAlias("update_alias_1_2", &lambda.UpdateAliasInput{FunctionName: aws.String(name), Name: aws.String("aliasname1_2")})
		r.getAlias("get_alias_1_2_after_update", name, "aliasname1_2")
		r.listAliases("list_aliases_for_fnname_after_update_2", &lambda.ListAliasesInput{FunctionName: aws.String(name)})
		r.listAliases("list_aliases_for_version", &lambda.ListAliasesInput{FunctionName: aws.String(name), FunctionVersion: aws.String("1")})
		r.do("delete_alias_response", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(name), Name: aws.String("aliasname1_1")})
			return err
		})
		r.listAliases("list_aliases_for_fnname_afterdelete", &lambda.ListAliasesInput{FunctionName: aws.String(name)})
	}},
	{id: "TestLambdaAlias::test_non_existent_alias_deletion", run: func(r *replay) {
		name := r.name("alias-fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"testenv": "staging"}}
		}))
		r.do("delete_alias_response", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(name), Name: aws.String("non-existent")})
			return err
		})
	}},
	{id: "TestLambdaAlias::test_non_existent_alias_update", run: func(r *replay) {
		name := r.name("alias-fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"testenv": "staging"}}
		}))
		r.updateAlias("update_alias_response", &lambda.UpdateAliasInput{FunctionName: aws.String(name), Name: aws.String("non-existent")})
	}},
	{id: "TestLambdaAlias::test_notfound_and_invalid_routingconfigs", run: func(r *replay) {
		name := r.name("alias-fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Publish = true
			in.Environment = &types.Environment{Variables: map[string]string{"testenv": "staging"}}
		}))
		r.publish("publish_v1", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		r.ok(r.updateConfiguration("", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Environment: &types.Environment{Variables: map[string]string{"testenv": "prod"}}}))
		r.publish("publish_v2", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		alias := func(step, fn, alias, version string, weights map[string]float64) {
			in := &lambda.CreateAliasInput{FunctionName: aws.String(fn), Name: aws.String(alias), FunctionVersion: aws.String(version)}
			if weights != nil {
				in.RoutingConfig = &types.AliasRoutingConfiguration{AdditionalVersionWeights: weights}
			}
			r.createAlias(step, in)
		}
		alias("routing_config_exc_toomany", name, "custom", "1", map[string]float64{"1": 0.8, "2": 0.2})
		alias("routing_config_exc_toohigh", name, "custom", "1", map[string]float64{"2": 2})
		alias("routing_config_exc_subzero", name, "custom", "1", map[string]float64{"2": -1})
		alias("routing_config_exc_sameversion", name, "custom", "1", map[string]float64{"1": 0.5})
		alias("target_version_doesnotexist", name, "custom", "10", map[string]float64{"2": 0.5})
		alias("routing_config_exc_version_doesnotexist", name, "custom", "1", map[string]float64{"10": 0.5})
		alias("target_version_exc_version_latest", name, "custom", "$LATEST", map[string]float64{"1": 0.5})
		alias("routing_config_exc_version_latest", name, "custom", "1", map[string]float64{"$LATEST": 0.5})
		alias("create-alias-latest", name, "custom-latest", "$LATEST", nil)
		alias("routing_config_exc_fn_doesnotexist", name+"-unknown", "custom", "1", map[string]float64{"2": 0.5})
		alias("create_alias_empty_routingconfig", name, "custom-empty-routingconfig", "1", map[string]float64{})
		alias("create_alias_response", name, "custom", "1", map[string]float64{"2": 0.5})
		alias("routing_config_exc_already_exist", name, "custom", "1", map[string]float64{"2": 0.5})
		r.getAlias("alias_does_not_exist_esc", name, "non-existent")
	}},
	{id: "TestLambdaAlias::test_alias_naming", run: func(r *replay) {
		name := r.name("alias-fn")
		r.create("create_response", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"testenv": "staging"}}
		}))
		r.publish("publish_v1", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		r.createAlias("create_alias_date", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("2024-01-02"), FunctionVersion: aws.String("1"), Description: aws.String("custom-alias")})
		r.getAlias("get_alias_date", name, "2024-01-02")
		r.ok(r.do("", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name + ":2024-01-02")})
			return err
		}))
		r.createAlias("create_alias_number_exception", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String("2024"), FunctionVersion: aws.String("1"), Description: aws.String("custom-alias")})
	}},
}

func (r *replay) createAlias(step string, in *lambda.CreateAliasInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.CreateAlias(ctx, in)
		return err
	})
}

func (r *replay) updateAlias(step string, in *lambda.UpdateAliasInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.UpdateAlias(ctx, in)
		return err
	})
}

func (r *replay) getAlias(step, name, alias string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(name), Name: aws.String(alias)})
		return err
	})
}

func (r *replay) listAliases(step string, in *lambda.ListAliasesInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.ListAliases(ctx, in)
		return err
	})
}

// listAllAliases pages through ListAliases one alias at a time, as the recording's
// paginator did.
func (r *replay) listAllAliases(name string) map[string]any {
	r.t.Helper()
	var all []any
	var marker *string
	for pages := 0; ; pages++ {
		if pages > 100 {
			r.t.Fatal("ListAliases does not end")
		}
		page := r.ok(r.listAliases("", &lambda.ListAliasesInput{FunctionName: aws.String(name), MaxItems: aws.Int32(1), Marker: marker}))
		all = append(all, page["Aliases"].([]any)...)
		next, _ := page["NextMarker"].(string)
		if next == "" {
			break
		}
		marker = aws.String(next)
	}
	return map[string]any{"Aliases": all}
}

// checkVersionRevision checks that a version reads with the RevisionId the answer of
// step gave it: publishing does not change a version's RevisionId later.
func (r *replay) checkVersionRevision(name, version, step string) {
	r.t.Helper()
	want := field(r.steps[step].(map[string]any), "RevisionId")
	if got := field(r.getFunction("", name, version), "Configuration", "RevisionId"); got != want {
		r.t.Errorf("version %s reads RevisionId %s, %s answered %s", version, got, step, want)
	}
}

// checkLatestUpdated checks that $LATEST carries the code of step's answer with a
// RevisionId of its own.
func (r *replay) checkLatestUpdated(name, step string) {
	r.t.Helper()
	ans := r.steps[step].(map[string]any)
	got := r.getFunction("", name)
	if field(got, "Configuration", "CodeSha256") != field(ans, "CodeSha256") {
		r.t.Errorf("$LATEST has CodeSha256 %s, the update %s", field(got, "Configuration", "CodeSha256"), field(ans, "CodeSha256"))
	}
	if field(got, "Configuration", "RevisionId") == field(ans, "RevisionId") {
		r.t.Errorf("$LATEST has the RevisionId of the published version")
	}
}

// TestRecordedVersions replays the version, alias and RevisionId scenarios.
func TestRecordedVersions(t *testing.T) {
	newReplayServer(t).runAll(t, versionScenarios)
}
