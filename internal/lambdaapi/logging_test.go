package lambdaapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// TestLoggingConfigMatchesRecordings replays the calls of the recorded
// TestLoggingConfig cases and compares every LoggingConfig shoal answers with
// the one AWS answered, key by key.
func TestLoggingConfigMatchesRecordings(t *testing.T) {
	e := newEnv(t)
	zip := base64.StdEncoding.EncodeToString(makeZip(t, map[string]string{"handler.py": "def handler(e, c): return e"}))
	// step is one call and the recorded answer it must give.
	type step struct {
		method, path, body string
		record             string // the recorded step
		inConfiguration    bool   // the answer is GetFunction's: LoggingConfig under Configuration
	}
	get := func(fn string) []step {
		return []step{{method: "GET", path: "/2015-03-31/functions/" + fn, record: "get_function_response", inConfiguration: true},
			{method: "GET", path: "/2015-03-31/functions/" + fn + "/configuration", record: "function_config"}}
	}
	update := func(fn, lc, record string) step {
		return step{method: "PUT", path: "/2015-03-31/functions/" + fn + "/configuration", body: `{"LoggingConfig":` + lc + `}`, record: record}
	}
	received := func(fn, record string) step {
		return step{method: "GET", path: "/2015-03-31/functions/" + fn + "/configuration", record: record}
	}
	type tcase struct {
		test   string
		create string // the LoggingConfig of CreateFunction, "" for none
		steps  func(fn string) []step
	}
	cases := []tcase{
		{"TestLoggingConfig::test_function_advanced_logging_configuration", `{"LogFormat":"JSON"}`, func(fn string) []step {
			return append(get(fn),
				update(fn, `{"LogFormat":"JSON","ApplicationLogLevel":"INFO","SystemLogLevel":"INFO","LogGroup":"cool_lambda"}`, "updated_config"),
				received(fn, "received_config"))
		}},
		{"TestLoggingConfig::test_advanced_logging_configuration_format_switch", "", func(fn string) []step {
			return append(get(fn),
				update(fn, `{"LogFormat":"JSON"}`, "updated_config"), received(fn, "received_config"),
				update(fn, `{"LogFormat":"Text"}`, "updated_config_v2"), received(fn, "received_config_v2"))
		}},
	}
	for i, partial := range []string{`{"LogFormat":"JSON"}`, `{"LogFormat":"JSON","ApplicationLogLevel":"DEBUG"}`,
		`{"LogFormat":"JSON","SystemLogLevel":"DEBUG"}`, `{"LogGroup":"cool_lambda"}`} {
		cases = append(cases, tcase{fmt.Sprintf("TestLoggingConfig::test_function_partial_advanced_logging_configuration_update[partial_config%d]", i), "",
			func(fn string) []step {
				return append(get(fn), update(fn, partial, "updated_config"), received(fn, "received_config"))
			}})
	}
	for i, tc := range cases {
		t.Run(tc.test[strings.Index(tc.test, "::")+2:], func(t *testing.T) {
			fn := fmt.Sprintf("logfn%d", i)
			body := `{"FunctionName":"` + fn + `","Role":"` + testRole + `","Runtime":"python3.12","Handler":"handler.handler","MemorySize":256,"Timeout":5,"Code":{"ZipFile":"` + zip + `"}`
			if tc.create != "" {
				body += `,"LoggingConfig":` + tc.create
			}
			if resp, m := rawDo(t, "POST", e.url+"/2015-03-31/functions", strings.NewReader(body+"}"), nil); resp.StatusCode != 201 {
				t.Fatalf("create: %d %v", resp.StatusCode, m)
			}
			for _, s := range tc.steps(fn) {
				rec := recording(t, tc.test, s.record)
				resp, got := rawDo(t, s.method, e.url+s.path, strings.NewReader(s.body), nil)
				if resp.StatusCode != 200 {
					t.Fatalf("%s %s: %d %v", s.method, s.path, resp.StatusCode, got)
				}
				if s.inConfiguration {
					rec, got = rec["Configuration"].(map[string]any), got["Configuration"].(map[string]any)
				}
				want := map[string]any{}
				for k, v := range rec["LoggingConfig"].(map[string]any) {
					want[k] = placeholders(v.(string), "<function-name:1>", fn)
				}
				if diff := cmp.Diff(want, got["LoggingConfig"]); diff != "" {
					t.Errorf("%s: LoggingConfig (-AWS +shoal):\n%s", s.record, diff)
				}
			}
		})
	}
}

func TestLoggingConfigErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "text")
	jsonIn := createInput("json", makeZip(t, map[string]string{"bootstrap": "x"}))
	jsonIn.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelDebug}
	if _, err := e.client.CreateFunction(ctx, jsonIn); err != nil {
		t.Fatal(err)
	}
	create := func(name string, lc *types.LoggingConfig) error {
		in := createInput(name, makeZip(t, map[string]string{"bootstrap": "x"}))
		in.LoggingConfig = lc
		_, err := e.client.CreateFunction(ctx, in)
		return err
	}
	update := func(name string, lc *types.LoggingConfig) error {
		_, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), LoggingConfig: lc})
		return err
	}
	const levelsOnText = `LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your request or change the LogFormat to "JSON" and try again.`
	for _, tc := range []struct {
		name    string
		call    func() error
		invalid bool // InvalidParameterValueException, else ValidationException
		msg     string
	}{
		{"create: levels with Text", func() error {
			return create("c1", &types.LoggingConfig{LogFormat: types.LogFormatText, ApplicationLogLevel: types.ApplicationLogLevelInfo})
		}, true, levelsOnText},
		{"create: a level without a format is Text", func() error {
			return create("c2", &types.LoggingConfig{SystemLogLevel: types.SystemLogLevelWarn})
		}, true, levelsOnText},
		{"update: a level on a Text function", func() error {
			return update("text", &types.LoggingConfig{SystemLogLevel: types.SystemLogLevelDebug})
		}, true, levelsOnText},
		{"update: switching to Text with a level", func() error {
			return update("json", &types.LoggingConfig{LogFormat: types.LogFormatText, ApplicationLogLevel: types.ApplicationLogLevelError})
		}, true, levelsOnText},
		{"bad application level", func() error {
			return create("c3", &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: "VERBOSE"})
		}, false, "1 validation error detected: Value 'VERBOSE' at 'loggingConfig.applicationLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]"},
		{"bad system level", func() error {
			return update("json", &types.LoggingConfig{SystemLogLevel: "ERROR"})
		}, false, "1 validation error detected: Value 'ERROR' at 'loggingConfig.systemLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [DEBUG, INFO, WARN]"},
		{"levels are case-sensitive", func() error {
			return update("json", &types.LoggingConfig{ApplicationLogLevel: "debug"})
		}, false, "1 validation error detected: Value 'debug' at 'loggingConfig.applicationLogLevel' failed to satisfy constraint: Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]"},
		{"bad format", func() error {
			return create("c4", &types.LoggingConfig{LogFormat: "json"})
		}, false, "1 validation error detected: Value 'json' at 'loggingConfig.logFormat' failed to satisfy constraint: Member must satisfy enum value set: [JSON, Text]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var msg string
			if tc.invalid {
				msg = aws.ToString(wantErr[*types.InvalidParameterValueException](t, err).Message)
			} else {
				ae := wantErr[smithy.APIError](t, err)
				if ae.ErrorCode() != "ValidationException" {
					t.Errorf("error %v, want a ValidationException", err)
				}
				msg = ae.ErrorMessage()
			}
			if msg != tc.msg {
				t.Errorf("message\n got: %s\nwant: %s", msg, tc.msg)
			}
		})
	}
	// A refused update changes nothing.
	cfg, err := e.client.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("json")})
	if err != nil {
		t.Fatal(err)
	}
	want := &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelDebug,
		SystemLogLevel: types.SystemLogLevelInfo, LogGroup: aws.String("/aws/lambda/json")}
	if diff := cmp.Diff(want, cfg.LoggingConfig, cmp.AllowUnexported(types.LoggingConfig{})); diff != "" {
		t.Errorf("LoggingConfig after refused updates (-want +got):\n%s", diff)
	}
}

// TestLoggingConfigMerges covers updates the recordings do not: an update of a
// JSON function that names no format keeps its levels but those it sets.
// A LoggingConfig in UpdateFunctionConfiguration replaces the function's
// whole, as AWS answers (captured answers of real Lambda, 2026-09, beyond the
// recordings, which start from Text functions with the default group and
// cannot tell this from a merge): an omitted format is Text, so levels alone
// on a JSON function are refused; an omitted group is the default one; an
// empty LoggingConfig turns a JSON function back to Text.
func TestLoggingConfigReplaces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := createInput("fn", makeZip(t, map[string]string{"bootstrap": "x"}))
	in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelWarn,
		SystemLogLevel: types.SystemLogLevelDebug, LogGroup: aws.String("group")}
	if _, err := e.client.CreateFunction(ctx, in); err != nil {
		t.Fatal(err)
	}
	def := aws.String("/aws/lambda/fn")
	steps := []struct {
		name    string
		in      types.LoggingConfig
		want    *types.LoggingConfig // nil: refused as levels on Text
		wantErr bool
	}{
		{name: "levels without a format are levels on Text", in: types.LoggingConfig{ApplicationLogLevel: types.ApplicationLogLevelTrace}, wantErr: true},
		{name: "naming JSON resets the group and the levels left out", in: types.LoggingConfig{LogFormat: types.LogFormatJson, SystemLogLevel: types.SystemLogLevelWarn},
			want: &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelInfo, SystemLogLevel: types.SystemLogLevelWarn, LogGroup: def}},
		{name: "a group alone is Text", in: types.LoggingConfig{LogGroup: aws.String("other")},
			want: &types.LoggingConfig{LogFormat: types.LogFormatText, LogGroup: aws.String("other")}},
		{name: "JSON with a group", in: types.LoggingConfig{LogFormat: types.LogFormatJson, LogGroup: aws.String("other")},
			want: &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelInfo, SystemLogLevel: types.SystemLogLevelInfo, LogGroup: aws.String("other")}},
		{name: "an empty LoggingConfig is the default", in: types.LoggingConfig{},
			want: &types.LoggingConfig{LogFormat: types.LogFormatText, LogGroup: def}},
	}
	for _, s := range steps {
		lc := s.in
		out, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), LoggingConfig: &lc})
		if s.wantErr {
			ipv := wantErr[*types.InvalidParameterValueException](t, err)
			if msg := aws.ToString(ipv.Message); msg != textWithLevels {
				t.Errorf("%s: %q", s.name, msg)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if diff := cmp.Diff(s.want, out.LoggingConfig, cmp.AllowUnexported(types.LoggingConfig{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
	// An update that names no LoggingConfig keeps it.
	out, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("fn"), Timeout: aws.Int32(9)})
	if err != nil {
		t.Fatal(err)
	}
	if got := out.LoggingConfig; got.LogFormat != types.LogFormatText || aws.ToString(got.LogGroup) != "/aws/lambda/fn" {
		t.Errorf("an update without LoggingConfig changed it: %+v", got)
	}
}

func TestManagedLoggingConfig(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.createCP(t, cpInput("cp"), true)
	jsonInfo := func(group string) *types.LoggingConfig {
		return &types.LoggingConfig{LogFormat: types.LogFormatJson, ApplicationLogLevel: types.ApplicationLogLevelInfo,
			SystemLogLevel: types.SystemLogLevelInfo, LogGroup: aws.String(group)}
	}
	same := func(name string, want, got *types.LoggingConfig) {
		t.Helper()
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(types.LoggingConfig{})); diff != "" {
			t.Errorf("%s: LoggingConfig (-want +got):\n%s", name, diff)
		}
	}
	created := e.createManaged(t, "mi", "cp", nil)
	same("created without LoggingConfig", jsonInfo("/aws/lambda/mi"), created.LoggingConfig)
	withGroup := e.createManaged(t, "mi2", "cp", func(in *lambda.CreateFunctionInput) {
		in.LoggingConfig = &types.LoggingConfig{LogGroup: aws.String("mine")}
	})
	same("created with a log group only", jsonInfo("mine"), withGroup.LoggingConfig)

	_, err := e.client.CreateFunction(ctx, managedInput("mi3", "cp", func(in *lambda.CreateFunctionInput) {
		in.Code.ZipFile = makeZip(t, map[string]string{"app.py": "x"})
		in.LoggingConfig = &types.LoggingConfig{LogFormat: types.LogFormatText}
	}))
	ipv := wantErr[*types.InvalidParameterValueException](t, err)
	if msg := aws.ToString(ipv.Message); !strings.Contains(msg, "always use the JSON log format") {
		t.Errorf("create with Text: %s", msg)
	}
	_, err = e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("mi"),
		LoggingConfig: &types.LoggingConfig{LogFormat: types.LogFormatText}})
	wantErr[*types.InvalidParameterValueException](t, err)

	up, err := e.client.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("mi"),
		LoggingConfig: &types.LoggingConfig{ApplicationLogLevel: types.ApplicationLogLevelError}})
	if err != nil {
		t.Fatal(err)
	}
	want := jsonInfo("/aws/lambda/mi")
	want.ApplicationLogLevel = types.ApplicationLogLevelError
	same("updated level", want, up.LoggingConfig)
	// Publishing keeps it, and so do unrelated updates.
	v, err := e.client.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("mi")})
	if err != nil {
		t.Fatal(err)
	}
	same("published", want, v.LoggingConfig)
}
