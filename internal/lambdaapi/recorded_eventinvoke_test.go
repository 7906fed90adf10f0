package lambdaapi

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Asynchronous invocation configs: put, update, get, list, delete, per
// function, version and alias, with every error AWS recorded.
var eventInvokeScenarios = []recordedScenario{
	{id: "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_lifecycle", run: func(r *replay) {
		name := r.name("fn-eventinvoke")
		r.ok(r.fixtureCreate("", name))
		r.putEventInvoke("put_invokeconfig_retries_0", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(0)})
		r.putEventInvoke("put_invokeconfig_eventage_60", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumEventAgeInSeconds: aws.Int32(60)})
		r.updateEventInvoke("update_invokeconfig_eventage_nochange", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumEventAgeInSeconds: aws.Int32(60)})
		r.updateEventInvoke("update_invokeconfig_retries", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(1)})
		r.getEventInvoke("get_invokeconfig", name)
		r.getEventInvoke("get_invokeconfig_latest", name, "$LATEST")
		r.listEventInvoke("list_single_invokeconfig", &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name)})
		r.publish("publish_version_result", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		r.getEventInvoke("get_invokeconfig_postpublish", name, "1")
		r.putEventInvoke("put_published_invokeconfig", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), Qualifier: aws.String("1"), MaximumEventAgeInSeconds: aws.Int32(120)})
		r.getEventInvoke("get_published_invokeconfig", name, "1")

		// Paging, as the scenario checks it.
		single, err := r.e.client.ListFunctionEventInvokeConfigs(r.ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name), MaxItems: aws.Int32(1)})
		if err != nil || len(single.FunctionEventInvokeConfigs) != 1 || single.NextMarker == nil {
			r.t.Fatalf("first page: %+v, %v", single, err)
		}
		all, err := r.e.client.ListFunctionEventInvokeConfigs(r.ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name)})
		if err != nil || len(all.FunctionEventInvokeConfigs) != 2 {
			r.t.Fatalf("whole list: %+v, %v", all, err)
		}
		rest, err := r.e.client.ListFunctionEventInvokeConfigs(r.ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name), Marker: single.NextMarker, MaxItems: aws.Int32(1)})
		if err != nil || len(rest.FunctionEventInvokeConfigs) != 1 || rest.NextMarker != nil {
			r.t.Fatalf("second page: %+v, %v", rest, err)
		}
		got := map[string]bool{aws.ToString(single.FunctionEventInvokeConfigs[0].FunctionArn): true, aws.ToString(rest.FunctionEventInvokeConfigs[0].FunctionArn): true}
		for _, c := range all.FunctionEventInvokeConfigs {
			if !got[aws.ToString(c.FunctionArn)] {
				r.t.Errorf("the pages miss %s", aws.ToString(c.FunctionArn))
			}
		}
		r.ok(r.do("", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String(name)})
			return err
		}))
		r.listEventInvoke("list_paging_nolimit_postdelete", &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name)})
	}},
	{id: "TestLambdaEventInvokeConfig::test_lambda_eventinvokeconfig_exceptions", run: func(r *replay) {
		name, name2 := r.name("fn-eventinvoke"), r.name("fn-eventinvoke-2")
		r.ok(r.fixtureCreate("", name))
		fnARN := r.arn(name)
		r.ok(r.fixtureCreate("", name2))
		fnARN2 := r.arn(name2)
		r.publish("fn_version_result", &lambda.PublishVersionInput{FunctionName: aws.String(name)})
		alias := "eventinvokealias"
		aliasARN := field(r.createAlias("fn_alias_result", &lambda.CreateAliasInput{FunctionName: aws.String(name), Name: aws.String(alias), FunctionVersion: aws.String("1")}), "AliasArn")
		fake := r.arn("doesnotexist")

		put := func(step string, in *lambda.PutFunctionEventInvokeConfigInput) { r.putEventInvoke(step, in) }
		retries := func(fn string, q *string, n int32) *lambda.PutFunctionEventInvokeConfigInput {
			return &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(fn), Qualifier: q, MaximumRetryAttempts: aws.Int32(n)}
		}
		dest := func(onSuccess *types.OnSuccess, onFailure *types.OnFailure) *lambda.PutFunctionEventInvokeConfigInput {
			return &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), DestinationConfig: &types.DestinationConfig{OnSuccess: onSuccess, OnFailure: onFailure}}
		}
		put("put_functionname_name_notfound", retries("doesnotexist", nil, 1))
		put("put_functionname_arn_notfound", retries(fake, nil, 1))
		put("put_functionname_nootherargs", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String("doesnotexist")})
		put("put_destination_lambda_doesntexist", dest(&types.OnSuccess{Destination: aws.String(fake)}, nil))
		put("put_destination_recursive", dest(&types.OnSuccess{Destination: aws.String(fnARN)}, nil))
		put("put_destination_other_lambda", dest(&types.OnSuccess{Destination: aws.String(fnARN2)}, nil))
		put("put_destination_invalid_service_arn", dest(&types.OnSuccess{Destination: aws.String(strings.Replace(fnARN, ":lambda:", ":iam:", 1))}, nil))
		put("put_destination_success_no_destination_arn", dest(&types.OnSuccess{}, nil))
		put("put_destination_failure_no_destination_arn", dest(nil, &types.OnFailure{}))
		put("put_destination_invalid_arn_pattern", dest(nil, &types.OnFailure{Destination: aws.String(strings.Replace(fnARN, ":lambda:", ":_-/!lambda:", 1))}))
		put("put_destination_latest", retries(name, nil, 1))
		put("put_destination_latest_explicit_qualifier", retries(name, aws.String("$LATEST"), 1))
		put("put_destination_version", retries(name, aws.String("1"), 1))
		put("put_alias_functionname_qualifier", retries(name, aws.String(alias), 1))
		put("put_alias_doesnotexist", retries(name, aws.String(alias+"doesnotexist"), 1))
		put("put_alias_qualifiedarn", retries(aliasARN, nil, 1))
		put("put_alias_qualifiedarn_qualifier", retries(aliasARN, aws.String(alias), 1))
		put("put_alias_qualifiedarn_qualifierconflict", retries(aliasARN, aws.String(alias+"doesnotexist"), 1))
		put("put_alias_shorthand", retries(name+":"+alias, nil, 1))
		put("put_alias_shorthand_qualifier", retries(name+":"+alias, aws.String(alias), 1))
		put("put_alias_shorthand_qualifierconflict", retries(name+":"+alias, aws.String(alias+"doesnotexist"), 1))
		put("put_version_shorthand", retries(name+":1", nil, 1))
		put("put_shorthand_qualifier_match", retries(name+":$LATEST", aws.String("$LATEST"), 1))
		put("put_shorthand_qualifier_mismatch_1", retries(name+":1", aws.String("$LATEST"), 1))
		put("put_shorthand_qualifier_mismatch_2", retries(name+":$LATEST", aws.String("1"), 1))
		put("put_shorthand_qualifier_mismatch_3", retries(name+":1", aws.String(alias), 1))
		put("put_maxevent_maxvalue_result", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(21600)})

		// Put replaces, Update merges.
		put("put_pre_overwrite", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(60)})
		put("put_post_overwrite", retries(name, nil, 0))
		put("second_overwrite_existing_response", retries(name, nil, 0))
		if got := r.getEventInvoke("get_post_overwrite", name); got["MaximumEventAgeInSeconds"] != nil {
			r.t.Errorf("a Put kept MaximumEventAgeInSeconds: %v", got)
		}
		put("pre_update_response", &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(60)})
		r.updateEventInvoke("update_response", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(0)})
		r.updateEventInvoke("update_response_existing", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(name), MaximumRetryAttempts: aws.Int32(0)})
		if got := r.getEventInvoke("", name); got["MaximumRetryAttempts"] != float64(0) || got["MaximumEventAgeInSeconds"] != float64(60) {
			r.t.Errorf("after an Update: %v", got)
		}

		r.listEventInvoke("list_configs", &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name)})
		paged, err := r.e.client.ListFunctionEventInvokeConfigs(r.ctx, &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name), MaxItems: aws.Int32(2)})
		if err != nil || len(paged.FunctionEventInvokeConfigs) != 2 || paged.NextMarker == nil {
			r.t.Errorf("2 of 3: %+v, %v", paged, err)
		}
		r.deleteEventInvoke("delete_latest", name, aws.String("$LATEST"))
		r.deleteEventInvoke("delete_version", name, aws.String("1"))
		r.deleteEventInvoke("delete_alias", name, aws.String(alias))
		r.listEventInvoke("list_configs_postdelete", &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String(name)})
		r.deleteEventInvoke("delete_function_not_found", name, nil)
		r.deleteEventInvoke("delete_function_doesnotexist", "doesnotexist", nil)
		r.listEventInvoke("list_function_doesnotexist", &lambda.ListFunctionEventInvokeConfigsInput{FunctionName: aws.String("doesnotexist")})
		r.getEventInvoke("get_function_doesnotexist", "doesnotexist")
		r.getEventInvoke("get_qualifier_doesnotexist", name, "doesnotexist")
		r.updateEventInvoke("update_eventinvokeconfig_function_doesnotexist", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String("doesnotexist"), MaximumRetryAttempts: aws.Int32(0)})
		r.getEventInvoke("get_eventinvokeconfig_doesnotexist", aliasARN)
		r.updateEventInvoke("update_eventinvokeconfig_config_doesnotexist_with_qualifier", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(aliasARN), MaximumRetryAttempts: aws.Int32(0)})
		r.updateEventInvoke("update_eventinvokeconfig_config_doesnotexist_without_qualifier", &lambda.UpdateFunctionEventInvokeConfigInput{FunctionName: aws.String(fnARN), MaximumRetryAttempts: aws.Int32(0)})
	}},
	nonexistingVersionEventInvoke(),
	nonexistingFunction("get_function_event_invoke_config", func(r *replay, name string) { r.getEventInvoke("not_found_exception", name) }),
	wrongRegion("get_function_event_invoke_config", func(r *replay, arn string) { r.getEventInvoke("wrong_region_exception", arn) }),
}

func nonexistingVersionEventInvoke() recordedScenario {
	return recordedScenario{id: "TestLambdaFunction::test_ops_on_nonexisting_version[get_function_event_invoke_config]", run: func(r *replay) {
		name := r.name("i-exist")
		r.bind["<fn-name>"] = name
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("Initial description") }))
		r.getEventInvoke("version_not_found_exception", name, "1221")
	}}
}

func (r *replay) putEventInvoke(step string, in *lambda.PutFunctionEventInvokeConfigInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.PutFunctionEventInvokeConfig(ctx, in)
		return err
	})
}

func (r *replay) updateEventInvoke(step string, in *lambda.UpdateFunctionEventInvokeConfigInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.UpdateFunctionEventInvokeConfig(ctx, in)
		return err
	})
}

func (r *replay) getEventInvoke(step, name string, qualifier ...string) map[string]any {
	r.t.Helper()
	in := &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(name)}
	if len(qualifier) > 0 {
		in.Qualifier = aws.String(qualifier[0])
	}
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetFunctionEventInvokeConfig(ctx, in)
		return err
	})
}

func (r *replay) deleteEventInvoke(step, name string, qualifier *string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String(name), Qualifier: qualifier})
		return err
	})
}

func (r *replay) listEventInvoke(step string, in *lambda.ListFunctionEventInvokeConfigsInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.ListFunctionEventInvokeConfigs(ctx, in)
		return err
	})
}

func TestRecordedEventInvokeConfigs(t *testing.T) {
	newReplayServer(t).runAll(t, eventInvokeScenarios)
}
