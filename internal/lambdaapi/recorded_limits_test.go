package lambdaapi

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/registry"
)

// Tags, reserved and provisioned concurrency, and account settings.
var tagScenarios = []recordedScenario{
	{id: "TestLambdaTag::test_create_tag_on_fn_create", run: func(r *replay) {
		name := r.name("fn")
		tag := r.name("tag")
		r.bind["<custom-tag>"] = tag
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{"testtag": tag} }))
		got := r.getFunction("get_function_result", name)
		r.listTags("list_tags_result", field(got, "Configuration", "FunctionArn"))
	}},
	tagLifecycle("TestLambdaTag::test_tag_lifecycle[lambda_function]"),
	// The same scenario before the test was parametrised (LocalStack f67ad4d15^).
	tagLifecycle("TestLambdaTag::test_tag_lifecycle"),
	tagExceptions("lambda_function", func(r *replay, name string) string { return r.arn(name) }),
	tagExceptions("capacity_provider", func(r *replay, name string) string {
		return "arn:aws:lambda:us-east-1:" + recordingsAccount + ":capacity-provider:" + name
	}),
	{id: "TestLambdaTag::test_tag_nonexisting_resource", run: func(r *replay) {
		name := r.name("fn")
		r.ok(r.fixtureCreate("", name))
		arn := field(r.getFunction("", name), "Configuration", "FunctionArn")
		r.getFunction("pre_delete_get_function", arn)
		r.ok(r.deleteFunction("", arn))
		r.tagResource("not_found_exception_tag", arn, map[string]string{"A": "B"})
		r.untagResource("not_found_exception_untag", arn, "A")
		r.listTags("not_found_exception_list", arn)
	}},
	{id: "TestLambdaTags::test_tag_exceptions", run: func(r *replay) {
		name := r.name("fn-tag")
		r.ok(r.fixtureCreate("", name))
		arn := field(r.getFunction("", name), "Configuration", "FunctionArn")
		r.tagResource("tag_lambda_invalidarn", "arn:aws:something", map[string]string{"key_a": "value_a"})
		r.tagResource("tag_lambda_doesnotexist", r.arn("doesnotexist"), map[string]string{"key_a": "value_a"})
		r.tagResource("tag_lambda_qualifier_doesnotexist", arn+":v1", map[string]string{"key_a": "value_a"})
		r.listTags("list_tag_lambda_empty", arn)
		r.untagResource("untag_nomatch", arn, "somekey")
		r.untagResource("untag_empty_keys", arn)
		r.tagResource("tag_empty_tags", arn, map[string]string{})
		r.ok(r.tagResource("", arn, map[string]string{"a_key": "a_value", "b_key": "b_value"}))
		r.ok(r.untagResource("", arn, "a_key", "c_key"))
		tags := r.ok(r.listTags("", arn))["Tags"].(map[string]any)
		if _, ok := tags["a_key"]; ok {
			r.t.Error("a_key is still there")
		}
		if _, ok := tags["b_key"]; !ok {
			r.t.Error("b_key is gone")
		}
	}},
	{id: "TestLambdaTags::test_tag_limits", run: func(r *replay) {
		name := r.name("fn-tag")
		r.ok(r.fixtureCreate("", name))
		arn := field(r.getFunction("", name), "Configuration", "FunctionArn")
		tags := func(n int) map[string]string {
			m := map[string]string{}
			for k := range n {
				m[fmt.Sprintf("%d_key", k)] = fmt.Sprintf("%d_value", k)
			}
			return m
		}
		r.tagResource("tag_lambda_too_many_tags", arn, tags(51))
		r.tagResource("tag_response", arn, tags(50))
		r.listTags("list_tags_response", arn)
		r.getFunction("get_fn_response", name)
		r.tagResource("tag_lambda_too_many_tags_additional", arn, map[string]string{"a_key": "a_value"})
		r.create("create_function_invalid_tags", r.awsInput(r.name("fn-tag-2"), func(in *lambda.CreateFunctionInput) { in.Tags = tags(51) }))
	}},
	{id: "TestLambdaTags::test_tag_versions", run: func(r *replay) {
		name := r.name("fn-tag")
		created := r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{"key_a": "value_a"} }))
		version := r.ok(r.publish("", &lambda.PublishVersionInput{FunctionName: aws.String(name)}))
		four := map[string]string{"key_b": "value_b", "key_c": "value_c", "key_d": "value_d", "key_e": "value_e"}
		r.tagResource("tag_resource_exception", field(version, "FunctionArn"), four)
		r.tagResource("tag_resource_latest_exception", field(created, "FunctionArn")+":$LATEST", four)
	}},
	{id: "TestLambdaTags::test_tag_lifecycle", run: func(r *replay) {
		name := r.name("fn-tag")
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{"key_a": "value_a"} }))
		arn := field(r.getFunction("", name), "Configuration", "FunctionArn")
		snap := func(suffix string) {
			r.listTags("list_tags_response_"+suffix, arn)
			r.getFunction("get_fn_response_"+suffix, arn)
		}
		snap("postfncreate")
		r.tagResource("tag_resource_response", arn, map[string]string{"key_b": "value_b", "key_c": "value_c", "key_d": "value_d", "key_e": "value_e"})
		snap("postaddtags")
		r.tagResource("tag_resource_overwrite", arn, map[string]string{"key_b": "value_b", "key_c": "value_x"})
		snap("overwrite")
		r.ok(r.untagResource("", arn, "key_c", "key_d"))
		snap("postuntag")
		r.ok(r.untagResource("", arn, "key_a", "key_b", "key_e"))
		snap("postuntagall")
		r.ok(r.deleteFunction("", name))
		r.listTags("list_tags_postdelete", arn)
	}},
}

func tagLifecycle(id string) recordedScenario {
	return recordedScenario{id: id, run: func(r *replay) {
		name := r.name("fn")
		r.ok(r.fixtureCreate("", name))
		arn := field(r.getFunction("", name), "Configuration", "FunctionArn")
		step := func(step string, resp map[string]any) {
			r.record(step, resp)
			r.listTags(step+"_listtags", arn)
		}
		step("tag_single_response", r.tagResource("", arn, map[string]string{"A": "tag-a"}))
		step("tag_multiple_response", r.tagResource("", arn, map[string]string{"B": "tag-b", "C": "tag-c"}))
		step("tag_overlap_response", r.tagResource("", arn, map[string]string{"C": "tag-c-newsuffix", "D": "tag-d"}))
		step("untag_single_response", r.untagResource("", arn, "A"))
		step("untag_multiple_response", r.untagResource("", arn, "B", "C"))
		step("untag_nonexisting_response", r.untagResource("", arn, "F"))
		step("untag_existing_and_nonexisting_response", r.untagResource("", arn, "D", "F"))
	}}
}

func tagExceptions(kind string, arnOf func(r *replay, name string) string) recordedScenario {
	return recordedScenario{id: "TestLambdaTag::test_tag_exceptions[" + kind + "]", run: func(r *replay) {
		name := r.name("5d3e7a0c-1f2b-4c6d-8e9f-0a1b2c3d4e5f")
		r.bind["<resource-name>"] = name
		arn := arnOf(r, name)
		r.tagResource("not_found_exception_tag", arn, map[string]string{"A": "B"})
		r.untagResource("not_found_exception_untag", arn, "A")
		r.listTags("not_found_exception_list", arn)
		r.listTags("aliased_arn_exception", arn+":alias")
		// The resource type replaced by "foobar".
		i := len(arn) - len(name) - 1
		j := i - 1
		for j > 0 && arn[j-1] != ':' {
			j--
		}
		r.listTags("invalid_arn_exception", arn[:j]+"foobar"+arn[i:])
	}}
}

func (r *replay) tagResource(step, arn string, tags map[string]string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.TagResource(ctx, &lambda.TagResourceInput{Resource: aws.String(arn), Tags: tags})
		return err
	})
}

func (r *replay) untagResource(step, arn string, keys ...string) map[string]any {
	r.t.Helper()
	if keys == nil {
		keys = []string{}
	}
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.UntagResource(ctx, &lambda.UntagResourceInput{Resource: aws.String(arn), TagKeys: keys})
		return err
	})
}

func (r *replay) listTags(step, arn string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.ListTags(ctx, &lambda.ListTagsInput{Resource: aws.String(arn)})
		return err
	})
}

func (r *replay) putReserved(step, name string, n int32) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(name), ReservedConcurrentExecutions: aws.Int32(n)})
		return err
	})
}

func (r *replay) putProvisioned(step, name, qualifier string, n int32) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.PutProvisionedConcurrencyConfig(ctx, &lambda.PutProvisionedConcurrencyConfigInput{
			FunctionName: aws.String(name), Qualifier: aws.String(qualifier), ProvisionedConcurrentExecutions: aws.Int32(n),
		})
		return err
	})
}

func (r *replay) getProvisioned(step, name, qualifier string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetProvisionedConcurrencyConfig(ctx, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String(name), Qualifier: aws.String(qualifier)})
		return err
	})
}

func (r *replay) deleteProvisioned(step, name, qualifier string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.DeleteProvisionedConcurrencyConfig(ctx, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String(name), Qualifier: aws.String(qualifier)})
		return err
	})
}

func (r *replay) listProvisioned(step, name string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.ListProvisionedConcurrencyConfigs(ctx, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String(name)})
		return err
	})
}

func (r *replay) accountSettings() map[string]any {
	r.t.Helper()
	return r.ok(r.do("", func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
		return err
	}))
}

func number(m map[string]any, path ...string) float64 {
	var cur any = m
	for _, p := range path {
		cur = cur.(map[string]any)[p]
	}
	return cur.(float64)
}

// Scenarios that read or change account-wide sums.
var concurrencyScenarios = []recordedScenario{
	{id: "TestLambdaReservedConcurrency::test_function_concurrency_exceptions", run: func(r *replay) {
		r.putReserved("put_function_concurrency_with_function_name_doesnotexist", "doesnotexist", 1)
		r.putReserved("put_function_concurrency_with_function_name_doesnotexist_and_invalid_concurrency", "doesnotexist", 0)
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name))
		fn := r.ok(r.getConfiguration("", name, "$LATEST"))
		r.putReserved("put_function_concurrency_with_qualified_arn", field(fn, "FunctionArn"), 0)
	}},
	{id: "TestLambdaReservedConcurrency::test_function_concurrency", run: func(r *replay) {
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name))
		r.putReserved("put_function_concurrency_with_reserved_0", name, 0)
		r.putReserved("put_function_concurrency_with_reserved_1", name, 1)
		get := func(step string) {
			r.do(step, func(ctx context.Context, c *lambda.Client) error {
				_, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(name)})
				return err
			})
		}
		get("get_function_concurrency")
		r.do("delete_response", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String(name)})
			return err
		})
		get("get_function_concurrency_after_delete")
		// The largest reservation the account allows (not recorded: it depends on the account).
		unreserved := number(r.accountSettings(), "AccountLimit", "UnreservedConcurrentExecutions")
		max := int32(unreserved) - int32(replayMinUnreserved)
		if got := r.ok(r.putReserved("", name, max)); number(got, "ReservedConcurrentExecutions") != float64(max) {
			r.t.Errorf("reserving %d answered %v", max, got)
		}
		r.ok(r.do("", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.DeleteFunctionConcurrency(ctx, &lambda.DeleteFunctionConcurrencyInput{FunctionName: aws.String(name)})
			return err
		}))
	}},
	{id: "TestLambdaReservedConcurrency::test_function_concurrency_limits", run: func(r *replay) {
		r.bind["<min_unreserved_concurrency>"] = itoa(replayMinUnreserved)
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name))
		concurrent := int32(number(r.accountSettings(), "AccountLimit", "ConcurrentExecutions"))
		r.putReserved("put_function_concurrency_account_limit_exceeded", name, concurrent+1)
		r.putReserved("put_function_concurrency_below_unreserved_min_value", name, concurrent)
	}},
	{id: "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", run: func(r *replay) {
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name))
		v := field(r.publish("publish_version_result", &lambda.PublishVersionInput{FunctionName: aws.String(name)}), "Version")
		r.getProvisioned("get_provisioned_config_doesnotexist", name, v)
		r.getProvisioned("get_provisioned_functionname_doesnotexist", "doesnotexist", "noalias")
		r.getProvisioned("get_provisioned_qualifier_doesnotexist", name, "noalias")
		r.getProvisioned("get_provisioned_version_doesnotexist", name, "10")
		r.getProvisioned("get_provisioned_latest", name, "$LATEST")
		r.listProvisioned("list_provisioned_noconfigs", name)
		r.listProvisioned("list_provisioned_functionname_doesnotexist", "doesnotexist")
		r.deleteProvisioned("delete_provisioned_functionname_doesnotexist", "doesnotexist", v)
		r.deleteProvisioned("delete_provisioned_qualifier_doesnotexist", name, "noalias")
		r.deleteProvisioned("delete_provisioned_version_doesnotexist", name, "10")
		r.deleteProvisioned("delete_provisioned_latest", name, "$LATEST")
		r.deleteProvisioned("delete_provisioned_config_doesnotexist", name, v)
		r.putProvisioned("put_provisioned_invalid_param_0", name, v, 0)
		r.putProvisioned("put_provisioned_functionname_doesnotexist_alias", "doesnotexist", "noalias", 1)
		r.putProvisioned("put_provisioned_functionname_doesnotexist_version", "doesnotexist", "1", 1)
		r.putProvisioned("put_provisioned_qualifier_doesnotexist", name, "doesnotexist", 1)
		r.putProvisioned("put_provisioned_version_doesnotexist", name, "10", 1)
		r.putProvisioned("put_provisioned_latest", name, "$LATEST", 1)
	}},
	{id: "TestLambdaProvisionedConcurrency::test_provisioned_concurrency_limits", run: func(r *replay) {
		r.bind["<min_unreserved_concurrency>"] = itoa(replayMinUnreserved)
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name))
		v := field(r.ok(r.publish("", &lambda.PublishVersionInput{FunctionName: aws.String(name)})), "Version")
		concurrent := int32(number(r.accountSettings(), "AccountLimit", "ConcurrentExecutions"))
		r.bind["<unreserved_concurrency>"] = itoa(int(concurrent))
		r.putProvisioned("put_provisioned_concurrency_account_limit_exceeded", name, v, concurrent+1)
		r.putProvisioned("put_provisioned_concurrency_below_unreserved_min_value", name, v, concurrent)
	}},
	{id: "TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle", run: func(r *replay) {
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name))
		v := field(r.publish("publish_version_result", &lambda.PublishVersionInput{FunctionName: aws.String(name)}), "Version")
		alias := r.name("alias")
		r.bind["<alias-name>"] = alias
		r.createAlias("create_alias_result", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String(alias), FunctionVersion: aws.String(v)})
		r.putProvisioned("put_provisioned_on_version", name, v, 1)
		r.putProvisioned("put_provisioned_on_alias_versionconflict", name, alias, 1)
		// The control plane's report that the environment is ready (no router here).
		if err := r.e.reg.SetProvisionedStatus(r.ctx, name, v, 1, 1, registry.ProvisionedReady, ""); err != nil {
			r.t.Fatal(err)
		}
		if s := field(r.ok(r.getProvisioned("", name, v)), "Status"); s != registry.ProvisionedReady {
			r.t.Fatalf("status %s after the ready report", s)
		}
		r.deleteProvisioned("delete_provisioned_version", name, v)
		r.getProvisioned("get_provisioned_version_postdelete", name, v)
		r.putProvisioned("put_provisioned_on_alias", name, alias, 1)
		r.putProvisioned("put_provisioned_on_version_conflict", name, v, 1)
		r.do("delete_alias_result", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.DeleteAlias(ctx, &lambda.DeleteAliasInput{FunctionName: aws.String(name), Name: aws.String(alias)})
			return err
		})
		r.getProvisioned("get_provisioned_alias_postaliasdelete", name, alias)
		r.listProvisioned("list_response_postdeletes", name)
	}},
	{id: "TestLambdaAccountSettings::test_account_settings", run: func(r *replay) {
		s := r.accountSettings()
		keys := func(part string) []any {
			var out []any
			for _, k := range keysOf(s[part].(map[string]any)) {
				out = append(out, k)
			}
			return out
		}
		r.record("acc_settings_modded", map[string]any{"AccountLimit": keys("AccountLimit"), "AccountUsage": keys("AccountUsage"), "ResponseMetadata": s["ResponseMetadata"]})
	}},
	{id: "TestLambdaAccountSettings::test_account_settings_total_code_size", run: func(r *replay) {
		total := func() float64 { return number(r.accountSettings(), "AccountUsage", "TotalCodeSize") }
		// A package of the recorded test's size, 276 bytes.
		zip := zipOfSize(r.t, 276)
		t0 := total()
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Code.ZipFile, in.Handler = zip, aws.String("index.handler") }))
		t1 := total()
		r.record("total_code_size_diff_create_function", t1-t0)
		r.ok(r.updateCode("", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: zip, Publish: true}))
		t2 := total()
		r.record("total_code_size_diff_update_function", t2-t1)
		layer := r.name("testlayer")
		r.ok(r.publishLayer("", &lambda.PublishLayerVersionInput{LayerName: aws.String(layer), Content: &types.LayerVersionContentInput{ZipFile: dummyLayer(r.t)}}))
		t3 := total()
		r.record("total_code_size_diff_publish_layer", t3-t2)
		r.ok(r.publishLayer("", &lambda.PublishLayerVersionInput{LayerName: aws.String(layer), Content: &types.LayerVersionContentInput{ZipFile: dummyLayer(r.t)}}))
		r.record("total_code_size_diff_publish_layer_version", total()-t3)
	}},
	{id: "TestLambdaAccountSettings::test_account_settings_total_code_size_config_update", run: func(r *replay) {
		total := func() float64 { return number(r.accountSettings(), "AccountUsage", "TotalCodeSize") }
		t0 := total()
		name := r.name("lambda_func")
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) {
			in.Runtime = types.RuntimeNodejs18x
			// The recorded package holds a Node.js echo handler of a few hundred bytes.
			in.Code.ZipFile = packageOfSize(r.t, "index.js", "exports.handler = async (event) => event;\n//", 368)
		}))
		t1 := total()
		r.record("is_total_code_size_diff_create_function_more_than_200", t1-t0 > 200)
		r.ok(r.updateConfiguration("", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Runtime: types.RuntimeNodejs20x}))
		t2 := total()
		r.record("total_code_size_diff_update_function_configuration", t2-t1)
		r.ok(r.publish("", &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String("actually publish the config update")}))
		r.record("is_total_code_size_diff_publish_version_after_config_update_more_than_200", total()-t2 > 200)
	}},
}

// replayMinUnreserved is the unreserved concurrency the replay server keeps.
const replayMinUnreserved = 100

// zipOfSize builds a valid package of exactly n bytes holding the Python echo
// handler (stored, not compressed, so that each byte of padding adds one).
func zipOfSize(t testing.TB, n int) []byte {
	t.Helper()
	return packageOfSize(t, "index.py", echoHandler+"#", n)
}

// packageOfSize builds a valid package of exactly n bytes: file, with content
// padded by a trailing comment.
func packageOfSize(t testing.TB, file, content string, n int) []byte {
	t.Helper()
	build := func(pad int) []byte {
		var buf bytes.Buffer
		w := zip.NewWriter(&buf)
		f, err := w.CreateHeader(&zip.FileHeader{Name: file, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(f, content+strings.Repeat("x", pad)+"\n")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	z := build(0)
	if len(z) > n {
		t.Fatalf("the smallest package has %d bytes, more than %d", len(z), n)
	}
	return build(n - len(z))
}

// TestRecordedTags replays the tag scenarios.
func TestRecordedTags(t *testing.T) {
	newReplayServer(t).runAll(t, tagScenarios)
}

// TestRecordedConcurrency replays the concurrency and account settings scenarios,
// in order, on a server of their own: they read account-wide sums.
func TestRecordedConcurrency(t *testing.T) {
	newReplayServer(t).runAll(t, concurrencyScenarios)
}
