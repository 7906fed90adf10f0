package lambdaapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/shoal-dev/shoal/internal/poll"
)

// Function lifecycle: create, get, update, delete, errors on missing functions and
// versions, ARNs, lists, and concurrent updates.
var functionScenarios = []recordedScenario{
	{id: "TestLambdaFunction::test_function_lifecycle", run: func(r *replay) {
		name := r.name("fn")
		r.fixtureCreate("create_response", name, func(in *lambda.CreateFunctionInput) {
			in.MemorySize, in.Timeout = aws.Int32(256), aws.Int32(5)
		})
		r.getFunction("get_function_response", name)
		r.updateConfiguration("update_func_conf_response", &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String(name), Runtime: types.RuntimePython311, Description: aws.String("Changed-Description"),
			MemorySize: aws.Int32(512), Timeout: aws.Int32(10), Environment: &types.Environment{Variables: map[string]string{"ENV_A": "a"}},
		})
		r.getFunction("get_function_response_postupdate", name)
		r.updateCode("update_code_response", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: versionZip(r.t)})
		r.getFunction("get_function_response_postcodeupdate", name)
		r.deleteFunction("delete_response", name)
		r.deleteFunction("delete_postdelete", name)
	}},
	{id: "TestLambdaFunction::test_redundant_updates", run: func(r *replay) {
		name := r.name("fn")
		r.fixtureCreate("create_response", name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("Initial description") })
		update := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Description: aws.String("1st update description")}
		r.updateConfiguration("first_update_result", update)
		r.getConfiguration("get_fn_config_result", name)
		r.getFunction("get_fn_result", name)
		r.updateConfiguration("redundant_update_result", update)
		r.getFunction("get_fn_result_after_redundant_update", name)
	}},
	arnQualifierMismatch("delete_function"),
	arnQualifierMismatch("get_function"),
	arnQualifierMismatch("get_function_configuration"),
	nonexistingVersion("get_function"),
	nonexistingVersion("get_function_configuration"),
	{id: "TestLambdaFunction::test_delete_on_nonexisting_version", run: func(r *replay) {
		name := r.name("i-exist")
		r.bind["<fn-name>"] = name
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("Initial description") }))
		r.ok(r.deleteFunction("", name, "1233"))
		r.ok(r.deleteFunction("", name, "1233"))
		r.ok(r.deleteFunction("", name))
		r.deleteFunction("delete_function_response_non_existent", name)
		r.deleteFunction("delete_function_response_non_existent_with_qualifier", name, "1233")
	}},
	nonexistingFunction("delete_function", func(r *replay, name string) { r.deleteFunction("not_found_exception", name) }),
	nonexistingFunction("get_function", func(r *replay, name string) { r.getFunction("not_found_exception", name) }),
	nonexistingFunction("get_function_configuration", func(r *replay, name string) { r.getConfiguration("not_found_exception", name) }),
	nonexistingFunction("get_function_concurrency", func(r *replay, name string) {
		r.do("not_found_exception", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(name)})
			return err
		})
	}),
	wrongRegion("get_function", func(r *replay, arn string) { r.getFunction("wrong_region_exception", arn) }),
	wrongRegion("get_function_configuration", func(r *replay, arn string) { r.getConfiguration("wrong_region_exception", arn) }),
	wrongRegion("get_function_concurrency", func(r *replay, arn string) {
		r.do("wrong_region_exception", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.GetFunctionConcurrency(ctx, &lambda.GetFunctionConcurrencyInput{FunctionName: aws.String(arn)})
			return err
		})
	}),
	wrongRegion("delete_function", func(r *replay, arn string) { r.deleteFunction("wrong_region_exception", arn) }),
	wrongRegion("invoke", func(r *replay, arn string) {
		r.do("wrong_region_exception", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(arn)})
			return err
		})
	}),
	{id: "TestLambdaFunction::test_lambda_code_location_zipfile", run: func(r *replay) {
		name := r.name("code-function")
		zip := echoZip(r.t)
		r.create("create-response-zip-file", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = zip }))
		got := r.getFunction("get-function-response", name)
		r.checkCodeLocation(got, zip)
		updated := versionZip(r.t)
		r.updateCode("update-function-response", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: updated})
		r.checkCodeLocation(r.getFunction("", name), updated)
	}, skip: map[string]string{
		"get-function-response-updated": "AWS was still applying the code update when it was read (LastUpdateStatus InProgress, the update's RevisionId); shoal applies an update before it answers, so the function reads Successful (the scenario checks the new code at Code.Location instead)",
	}},
	{id: "TestLambdaFunction::test_function_arns", run: func(r *replay) {
		name1, name2 := r.name("test-function-arn"), r.name("test-partial-arn")
		r.fixtureCreate("create-function-arn-response", r.arn(name1))
		r.fixtureCreate("create-function-partial-arn-response", recordingsAccount+":function:"+name2)
		bad := func(step, name string) {
			r.create(step, r.awsInput(name))
		}
		bad("invalid_function_name_exc", "invalid:function:name")
		bad("long_function_name_exc", strings.Repeat("a", 65))
		prefix := "arn:aws:lambda:us-east-1:" + recordingsAccount + ":function:"
		long := strings.Repeat("a", 140-len(prefix)+1)
		r.bind["<function-name>"] = long
		bad("long_function_arn_exc", prefix+long)
		bad("function_arn_other_region_exc", "arn:aws:lambda:ap-southeast-1:"+recordingsAccount+":function:"+r.name("other-region"))
		bad("function_arn_other_account_exc", "arn:aws:lambda:us-east-1:123456789012:function:"+r.name("other-account"))
	}},
	{id: "TestLambdaFunction::test_create_lambda_exceptions", run: func(r *replay) {
		name := r.name("invalid-function")
		r.create("invalid_role_arn_exc", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Role = aws.String("r1") }))
		r.create("invalid_runtime_exc", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Runtime = "non-existent-runtime" }))
		r.create("uppercase_runtime_exc", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Runtime = "PYTHON3.9" }))
		r.create("multiple_architectures", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Architectures = []types.Architecture{types.ArchitectureX8664, types.ArchitectureArm64}
		}))
		r.create("uppercase_architecture", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Architectures = []types.Architecture{"X86_64"} }))
		r.create("invalid_zip_exc", r.awsInput(name, func(in *lambda.CreateFunctionInput) {
			in.Code.ZipFile, in.Runtime = []byte("this is not a zipfile, just a random string"), types.RuntimePython39
		}))
	}, skip: map[string]string{
		"empty_architectures": "botocore refuses an empty Architectures list before sending the request (ParamValidationError); the recording is that client-side message",
	}},
	{id: "TestLambdaFunction::test_update_lambda_exceptions", run: func(r *replay) {
		name := r.name("invalid-function")
		r.ok(r.create("", r.awsInput(name)))
		update := func(step string, mod func(in *lambda.UpdateFunctionConfigurationInput)) {
			in := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name)}
			mod(in)
			r.updateConfiguration(step, in)
		}
		update("invalid_role_arn_exc", func(in *lambda.UpdateFunctionConfigurationInput) { in.Role = aws.String("r1") })
		update("invalid_runtime_exc", func(in *lambda.UpdateFunctionConfigurationInput) { in.Runtime = "non-existent-runtime" })
		update("uppercase_runtime_exc", func(in *lambda.UpdateFunctionConfigurationInput) { in.Runtime = "PYTHON3.9" })
	}},
	{id: "TestLambdaFunction::test_list_functions", run: func(r *replay) {
		name1, name2 := r.name("list-fn-1"), r.name("list-fn-2")
		r.fixtureCreate("create_response_1", name1, func(in *lambda.CreateFunctionInput) { in.Publish = true })
		r.fixtureCreate("create_response_2", name2)
		r.do("list_functions_invalid_functionversion", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: "invalid"})
			return err
		})
		mine := map[string]bool{name1: true, name2: true}
		r.record("list_all", r.listAllFunctions(types.FunctionVersionAll, mine))
		r.record("list_default", r.listAllFunctions("", mine))
	}},
	{id: "TestLambdaFunction::test_invalid_invoke", run: func(r *replay) {
		r.do("invoke_function_name_pattern_exc", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123400000000@function:myfn"), Payload: []byte("{}")})
			return err
		})
	}},
	{id: "TestLambdaFunction::test_lambda_concurrent_code_updates", run: func(r *replay) {
		name := r.name("test-lambda")
		r.create("create-function-response", r.awsInput(name, func(in *lambda.CreateFunctionInput) { in.Handler = aws.String("handler.handler") }))
		r.whileUpdating(name, "/2015-03-31/functions/"+name+"/code", `{"ZipFile":"`+b64(versionZip(r.t))+`"}`, func() {
			r.updateCode("update-during-in-progress-update-exc", &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: echoZip(r.t)})
		})
	}},
	{id: "TestLambdaFunction::test_lambda_concurrent_config_updates", run: func(r *replay) {
		name := r.name("test-lambda")
		r.fixtureCreate("create-function-response", name)
		r.whileUpdating(name, "/2015-03-31/functions/"+name+"/configuration", `{"Environment":{"Variables":{"TEST":"TEST1"}}}`, func() {
			r.updateConfiguration("update-during-in-progress-update-exc", &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(name), Environment: &types.Environment{Variables: map[string]string{"TEST": "TEST2"}},
			})
		})
	}},
}

func arnQualifierMismatch(op string) recordedScenario {
	return recordedScenario{id: "TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[" + op + "]", run: func(r *replay) {
		arn := r.arn("some-function")
		call := func(step, name string) {
			switch op {
			case "delete_function":
				r.deleteFunction(step, name, "$LATEST")
			case "get_function":
				r.getFunction(step, name, "$LATEST")
			default:
				r.getConfiguration(step, name, "$LATEST")
			}
		}
		call("not_match_exception", arn+":1")
		call("match_exception", arn+":$LATEST")
	}}
}

func nonexistingVersion(op string) recordedScenario {
	return recordedScenario{id: "TestLambdaFunction::test_ops_on_nonexisting_version[" + op + "]", run: func(r *replay) {
		name := r.name("i-exist")
		r.bind["<fn-name>"] = name
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("Initial description") }))
		if op == "get_function" {
			r.getFunction("version_not_found_exception", name, "1221")
		} else {
			r.getConfiguration("version_not_found_exception", name, "1221")
		}
	}}
}

func nonexistingFunction(op string, call func(r *replay, name string)) recordedScenario {
	return recordedScenario{id: "TestLambdaFunction::test_ops_on_nonexisting_fn[" + op + "]", run: func(r *replay) {
		name := r.name("i-dont-exist")
		r.bind["<nonexisting-fn-name>"] = name
		call(r, name)
	}}
}

func wrongRegion(op string, call func(r *replay, arn string)) recordedScenario {
	return recordedScenario{id: "TestLambdaFunction::test_get_function_wrong_region[" + op + "]", run: func(r *replay) {
		name := r.name("i-exist")
		r.bind["<fn-name>"] = name
		r.bind["<wrong-region>"] = "eu-central-1"
		r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("Initial description") }))
		call(r, "arn:aws:lambda:eu-central-1:"+recordingsAccount+":function:"+name)
	}}
}

// checkCodeLocation downloads Code.Location and compares it with the package sent.
func (r *replay) checkCodeLocation(resp map[string]any, zip []byte) {
	r.t.Helper()
	loc := field(resp, "Code", "Location")
	res, err := http.Get(loc)
	if err != nil {
		r.t.Fatalf("Code.Location %q: %v", loc, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if string(b) != string(zip) {
		r.t.Errorf("Code.Location %q serves %d bytes, not the %d-byte package", loc, len(b), len(zip))
	}
}

// listAllFunctions pages through ListFunctions one item at a time, as the
// recording's paginator did, and keeps the scenario's functions.
func (r *replay) listAllFunctions(version types.FunctionVersion, keep map[string]bool) map[string]any {
	r.t.Helper()
	var all []any
	var marker *string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			r.t.Fatal("ListFunctions does not end")
		}
		page := r.ok(r.do("", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.ListFunctions(ctx, &lambda.ListFunctionsInput{FunctionVersion: version, MaxItems: aws.Int32(1), Marker: marker})
			return err
		}))
		for _, f := range page["Functions"].([]any) {
			if keep[f.(map[string]any)["FunctionName"].(string)] {
				all = append(all, f)
			}
		}
		next, _ := page["NextMarker"].(string)
		if next == "" {
			break
		}
		marker = aws.String(next)
	}
	return map[string]any{"Functions": all}
}

// whileUpdating starts an update whose request body arrives only after then has run,
// waits until the function reads LastUpdateStatus InProgress, runs then, and
// finishes the first update (which must succeed).
func (r *replay) whileUpdating(name, path, body string, then func()) {
	r.t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPut, r.e.url+path, pr)
	if err != nil {
		r.t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	finished := false
	defer func() { // on failure, end the held request so that the server can close
		if !finished {
			pw.CloseWithError(io.ErrUnexpectedEOF)
			<-done
		}
	}()
	// Send all but the last byte: the update is under way and waits for the rest.
	if _, err := io.WriteString(pw, body[:len(body)-1]); err != nil {
		r.t.Fatal(err)
	}
	poll.Until(r.t, 10*time.Second, func() error {
		if s := field(r.getFunction("", name), "Configuration", "LastUpdateStatus"); s != "InProgress" {
			return fmt.Errorf("LastUpdateStatus %q during an update, want InProgress", s)
		}
		return nil
	})
	then()
	if _, err := io.WriteString(pw, body[len(body)-1:]); err != nil {
		r.t.Fatal(err)
	}
	pw.Close()
	res := <-done
	finished = true
	if res.err != nil || res.status != http.StatusOK {
		r.t.Errorf("the first update answered %d %v", res.status, res.err)
	}
}

// TestRecordedFunctions replays the function lifecycle scenarios.
func TestRecordedFunctions(t *testing.T) {
	newReplayServer(t).runAll(t, functionScenarios)
}
