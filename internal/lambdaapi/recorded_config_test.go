package lambdaapi

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Runtimes, logging, SnapStart, recursion, sizes and ARNs in updates.
var configScenarios = []recordedScenario{
	deprecatedRuntime("java8"),
	deprecatedRuntime("go1.x"),
	deprecatedRuntime("provided"),
	deprecatedRuntime("ruby2.7"),
	deprecatedRuntime("nodejs14.x"),
	deprecatedRuntime("python3.7"),
	deprecatedRuntime("dotnetcore3.1"),
	deprecatedRuntime("nodejs12.x"),
	{id: "TestLoggingConfig::test_function_advanced_logging_configuration", run: func(r *replay) {
		name := r.name("fn")
		r.fixtureCreate("create_response", name, func(in *lambda.CreateFunctionInput) {
			in.MemorySize, in.Timeout = aws.Int32(256), aws.Int32(5)
			in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson}
		})
		r.getFunction("get_function_response", name)
		r.getConfiguration("function_config", name)
		r.updateConfiguration("updated_config", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), LoggingConfig: &types.LoggingConfig{
			LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelInfo, SystemLogLevel: types.SystemLogLevelInfo, LogGroup: aws.String("cool_lambda"),
		}})
		r.getConfiguration("received_config", name)
	}},
	{id: "TestLoggingConfig::test_advanced_logging_configuration_format_switch", run: func(r *replay) {
		name := r.loggingFunction()
		r.updateConfiguration("updated_config", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatJson}})
		r.getConfiguration("received_config", name)
		r.updateConfiguration("updated_config_v2", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatText}})
		r.getConfiguration("received_config_v2", name)
	}},
	partialLogging("partial_config0", &types.LoggingConfig{LogFormat: types.LogFormatJson}),
	partialLogging("partial_config1", &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelDebug}),
	partialLogging("partial_config2", &types.LoggingConfig{LogFormat: types.LogFormatJson, SystemLogLevel: types.SystemLogLevelDebug}),
	partialLogging("partial_config3", &types.LoggingConfig{LogGroup: aws.String("cool_lambda")}),
	snapStartLifecycle("python3.12"),
	snapStartLifecycle("python3.13"),
	snapStartUpdate("python3.12"),
	snapStartUpdate("python3.13"),
	{id: "TestLambdaSnapStart::test_snapstart_exceptions", run: func(r *replay) {
		r.create("create_function_invalid_snapstart_apply", r.awsInput(r.name("invalid-function"), func(in *lambda.CreateFunctionInput) {
			in.Handler = aws.String("cloud.localstack.sample.LambdaHandlerWithLib")
			in.Runtime = types.RuntimeJava21
			in.SnapStart = &types.SnapStart{ApplyOn: "invalidOption"}
		}))
	}},
	{id: "TestLambdaRecursion::test_put_function_recursion_config_allow", run: func(r *replay) {
		name := r.recursionFunction()
		r.putRecursion("put_recursion_config_response", name, types.RecursiveLoopAllow)
		if got := field(r.getRecursion("get_recursion_config_response", name), "RecursiveLoop"); got != "Allow" {
			r.t.Errorf("RecursiveLoop %q after Allow", got)
		}
	}},
	{id: "TestLambdaRecursion::test_put_function_recursion_config_default_terminate", run: func(r *replay) {
		name := r.recursionFunction()
		r.getRecursion("get_recursion_default_terminate_response", name)
	}},
	{id: "TestLambdaRecursion::test_put_function_recursion_config_invalid_value", run: func(r *replay) {
		name := r.recursionFunction()
		r.putRecursion("put_recursion_invalid_value_error", name, "InvalidValue")
	}},
	{id: "TestLambdaSizeLimits::test_large_environment_variables_fails", run: func(r *replay) {
		name := r.name("large-envvar-lambda")
		// Four KB less the six bytes of JSON around the pair, less the key: one byte too many.
		value := strings.Repeat("x", 4*1024-6-len("LARGE_VAR"))
		r.fixtureCreate("failed_create_fn_result", name, func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"LARGE_VAR": value}}
		})
		r.checkNotFound(name)
	}},
	{id: "TestLambdaSizeLimits::test_large_environment_fails_multiple_keys", run: func(r *replay) {
		// Lambda quotes the variables in the order the request gave them, which the
		// SDK for Go does not keep (it sends a map): the request is written here, in
		// the order the recorded one had.
		name := r.name("large-envvar-lambda")
		body := `{"FunctionName":"` + name + `","Runtime":"python3.12","Handler":"handler.handler","Role":"` + replayRole +
			`","Code":{"ZipFile":"` + b64(echoZip(r.t)) + `"},"Timeout":30,"Environment":{"Variables":{"SMALL_VAR":"ok","LARGE_VAR":"` +
			strings.Repeat("x", 4064) + `"}},"Tags":{}}`
		r.raw("failured_create_fn_result_multi_key", "POST", "/2015-03-31/functions", strings.NewReader(body))
		r.checkNotFound(name)
	}},
	{id: "TestLambdaSizeLimits::test_lambda_envvars_near_limit_succeeds", run: func(r *replay) {
		name := r.name("large-envvar-lambda")
		value := strings.Repeat("x", 4*1024-7-len("LARGE_VAR"))
		r.fixtureCreate("successful_create_fn_result", name, func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"LARGE_VAR": value}}
		})
		r.ok(r.getFunction("", name))
	}},
	{id: "TestLambdaSizeLimits::test_oversized_zipped_create_lambda", run: func(r *replay) {
		r.create("invalid_param_exc", r.awsInput(r.name("test_lambda"), func(in *lambda.CreateFunctionInput) {
			in.Handler, in.Timeout = aws.String("handler.handler"), aws.Int32(10)
			in.Code.ZipFile = storedZip(r.t, DefaultMaxZippedCodeBytes+1024)
		}))
	}},
	{id: "TestLambdaSizeLimits::test_oversized_request_create_lambda", run: func(r *replay) {
		// A package just under the zipped limit, and an environment that takes the
		// request past the request limit.
		r.create("invalid_param_exc", r.awsInput(r.name("test_lambda"), func(in *lambda.CreateFunctionInput) {
			in.Handler, in.Timeout = aws.String("handler.handler"), aws.Int32(10)
			in.Code.ZipFile = storedZip(r.t, DefaultMaxZippedCodeBytes-2048)
			in.Environment = &types.Environment{Variables: map[string]string{"largeKey": strings.Repeat("#", DefaultMaxRequestBytes-DefaultMaxZippedCodeBytes+1024*1024)}}
		}))
	}},
	{id: "TestPartialARNMatching::test_update_function_configuration_full_arn", run: func(r *replay) {
		// Nothing recorded: every form of the name must be accepted.
		name := r.name("fn")
		created := r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.MemorySize, in.Timeout = aws.Int32(256), aws.Int32(5) }))
		full := field(created, "FunctionArn")
		parts := strings.Split(full, ":")
		partial := strings.Join(parts[len(parts)-3:], ":")
		for _, n := range []string{full, name, partial} {
			r.ok(r.updateConfiguration("", &lambda.UpdateFunctionConfigurationInput{
				FunctionName: aws.String(n), Description: aws.String("Changed-Description"), MemorySize: aws.Int32(512), Timeout: aws.Int32(10),
				Environment: &types.Environment{Variables: map[string]string{"ENV_A": "a"}},
			}))
		}
	}},
}

func deprecatedRuntime(rt string) recordedScenario {
	return recordedScenario{id: "TestRuntimeValidation::test_create_deprecated_function_runtime_with_validation_enabled[" + rt + "]", run: func(r *replay) {
		r.create("deprecation_error", r.fixtureInput(r.name("fn"), func(in *lambda.CreateFunctionInput) { in.Runtime = types.Runtime(rt) }))
	}}
}

// loggingFunction creates the function of the logging scenarios and records its
// first three steps.
func (r *replay) loggingFunction() string {
	name := r.name("fn")
	r.fixtureCreate("create_response", name, func(in *lambda.CreateFunctionInput) { in.MemorySize, in.Timeout = aws.Int32(256), aws.Int32(5) })
	r.getFunction("get_function_response", name)
	r.getConfiguration("function_config", name)
	return name
}

func partialLogging(param string, lc *types.LoggingConfig) recordedScenario {
	return recordedScenario{id: "TestLoggingConfig::test_function_partial_advanced_logging_configuration_update[" + param + "]", run: func(r *replay) {
		name := r.loggingFunction()
		r.updateConfiguration("updated_config", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), LoggingConfig: lc})
		r.getConfiguration("received_config", name)
	}}
}

// snapStartInput is what the multi-runtime fixture sends for the echo scenario.
func (r *replay) snapStartInput(rt string) *lambda.CreateFunctionInput {
	return &lambda.CreateFunctionInput{
		FunctionName: aws.String(r.name("echo")), Runtime: types.Runtime(rt), Handler: aws.String("handler.handler"),
		Role: aws.String(replayRole), Code: &types.FunctionCode{ZipFile: echoZip(r.t)}, MemorySize: aws.Int32(1024), Timeout: aws.Int32(5),
	}
}

func snapStartLifecycle(rt string) recordedScenario {
	return recordedScenario{id: "TestLambdaSnapStart::test_snapstart_lifecycle[" + rt + "]", run: func(r *replay) {
		in := r.snapStartInput(rt)
		name := *in.FunctionName
		r.create("create_function_response", in)
		v := field(r.ok(r.publish("", &lambda.PublishVersionInput{FunctionName: aws.String(name), Description: aws.String("version1")})), "Version")
		r.getFunction("get_function_response_latest", name)
		r.getFunction("get_function_response_version_1", name+":"+v)
	}}
}

func snapStartUpdate(rt string) recordedScenario {
	return recordedScenario{id: "TestLambdaSnapStart::test_snapstart_update_function_configuration[" + rt + "]", run: func(r *replay) {
		in := r.snapStartInput(rt)
		r.create("create_function_response", in)
		r.updateConfiguration("update_function_response", &lambda.UpdateFunctionConfigurationInput{
			FunctionName: in.FunctionName, SnapStart: &types.SnapStart{ApplyOn: types.SnapStartApplyOnPublishedVersions},
		})
	}}
}

func (r *replay) recursionFunction() string {
	name := r.name("recursion-test")
	r.bind["<fn-name>"] = name
	r.ok(r.fixtureCreate("", name, func(in *lambda.CreateFunctionInput) { in.Description = aws.String("Lambda with recursion test") }))
	return name
}

func (r *replay) putRecursion(step, name string, loop types.RecursiveLoop) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.PutFunctionRecursionConfig(ctx, &lambda.PutFunctionRecursionConfigInput{FunctionName: aws.String(name), RecursiveLoop: loop})
		return err
	})
}

func (r *replay) getRecursion(step, name string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetFunctionRecursionConfig(ctx, &lambda.GetFunctionRecursionConfigInput{FunctionName: aws.String(name)})
		return err
	})
}

// checkNotFound checks that a refused creation left no function behind.
func (r *replay) checkNotFound(name string) {
	r.t.Helper()
	if e, _ := r.getFunction("", name)["Error"].(map[string]any); e["Code"] != "ResourceNotFoundException" {
		r.t.Errorf("GetFunction after a refused creation: %v", e)
	}
}

// storedZip builds a valid package of n bytes, its content stored uncompressed.
func storedZip(t testing.TB, n int) []byte {
	t.Helper()
	return zipOfSize(t, n)
}

// TestRecordedConfig replays the runtime, logging, SnapStart, recursion and size
// scenarios.
func TestRecordedConfig(t *testing.T) {
	newReplayServer(t).runAll(t, configScenarios)
}
