package lambdaapi

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The recordings of real AWS Lambda responses (see the README beside them) are the
// oracle: for a handful of calls, shoal's status, error code, message, error body
// keys and response field sets must match what AWS answered.
// They live in the repository, under testdata/aws-recordings.
const recordingsDir = "../../testdata/aws-recordings"

var (
	recordingsOnce sync.Once
	recordings     map[string]map[string]any
	recordingsErr  error
)

func recording(t *testing.T, test, step string) map[string]any {
	t.Helper()
	recordingsOnce.Do(func() {
		b, err := os.ReadFile(filepath.Join(recordingsDir, "test_lambda_api.snapshot.json"))
		if err != nil {
			recordingsErr = err
			return
		}
		var all map[string]struct {
			Content map[string]any `json:"recorded-content"`
		}
		if recordingsErr = json.Unmarshal(b, &all); recordingsErr != nil {
			return
		}
		recordings = make(map[string]map[string]any)
		for id, r := range all {
			recordings[id[strings.Index(id, "::")+2:]] = r.Content
		}
	})
	if recordingsErr != nil {
		t.Fatalf("recordings: %v", recordingsErr)
	}
	r, ok := recordings[test]
	if !ok {
		t.Fatalf("no recording %s", test)
	}
	s, ok := r[step].(map[string]any)
	if !ok {
		t.Fatalf("no step %s in %s", step, test)
	}
	return s
}

// placeholders turns a recorded message into the one shoal should send.
func placeholders(s string, extra ...string) string {
	r := strings.NewReplacer(append([]string{"<partition>", "aws", "<region>", "us-east-1", "111111111111", "123456789012"}, extra...)...)
	return r.Replace(s)
}

// bodyKeys are the keys of an error body as the SDKs read them (botocore copies the
// modelled members to the top level of its parsed response).
func bodyKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		if k != "Error" && k != "ResponseMetadata" && k != "Count" && k != "Errors" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// cpTags is the recorded test of tag operations on capacity providers.
const cpTags = "TestLambdaTag::test_tag_exceptions[capacity_provider]"

func TestErrorsMatchRecordings(t *testing.T) {
	e := newEnv(t)
	e.create(t, "fn")
	rawDo(t, "POST", e.url+"/2015-03-31/functions/fn/versions", strings.NewReader("{}"), nil)
	zip := base64.StdEncoding.EncodeToString(makeZip(t, map[string]string{"index.py": "x"}))
	createBody := func(extra string) string {
		return `{"FunctionName":"f2","Role":"arn:aws:iam::123456789012:role/r","Runtime":"python3.12","Handler":"index.handler","Code":{"ZipFile":"` + zip + `"}` + extra + `}`
	}
	sha := func() string {
		_, m := rawDo(t, "GET", e.url+"/2015-03-31/functions/fn", nil, nil)
		return m["Configuration"].(map[string]any)["CodeSha256"].(string)
	}()
	arn := "arn:aws:lambda:us-east-1:123456789012:function:fn"
	for _, tc := range []struct {
		test, step         string
		method, path, body string
		headers            map[string]string
		replace            []string
	}{
		{"TestLambdaFunction::test_function_lifecycle", "delete_postdelete", "GET", "/2015-03-31/functions/gone", "", nil, []string{"<function-name:1>", "gone"}},
		{"TestLambdaFunction::test_create_lambda_exceptions", "invalid_zip_exc", "POST", "/2015-03-31/functions", strings.Replace(createBody(""), zip, "bm90IGEgemlw", 1), nil, nil},
		{"TestLambdaFunction::test_create_lambda_exceptions", "invalid_runtime_exc", "POST", "/2015-03-31/functions", strings.Replace(createBody(""), "python3.12", "non-existent-runtime", 1), nil, nil},
		{"TestLambdaFunction::test_create_lambda_exceptions", "uppercase_runtime_exc", "POST", "/2015-03-31/functions", strings.Replace(createBody(""), "python3.12", "PYTHON3.9", 1), nil, nil},
		{"TestLambdaFunction::test_create_lambda_exceptions", "invalid_role_arn_exc", "POST", "/2015-03-31/functions", strings.Replace(createBody(""), "arn:aws:iam::123456789012:role/r", "r1", 1), nil, nil},
		{"TestLambdaFunction::test_create_lambda_exceptions", "multiple_architectures", "POST", "/2015-03-31/functions", createBody(`,"Architectures":["x86_64","arm64"]`), nil, nil},
		{"TestLambdaFunction::test_create_lambda_exceptions", "uppercase_architecture", "POST", "/2015-03-31/functions", createBody(`,"Architectures":["X86_64"]`), nil, nil},
		{"TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[get_function]", "not_match_exception", "GET", "/2015-03-31/functions/" + arn + ":$LATEST?Qualifier=1", "", nil, nil},
		{"TestLambdaFunction::test_ops_with_arn_qualifier_mismatch[delete_function]", "match_exception", "DELETE", "/2015-03-31/functions/" + arn + ":$LATEST?Qualifier=$LATEST", "", nil, nil},
		{"TestLambdaFunction::test_ops_on_nonexisting_version[get_function]", "version_not_found_exception", "GET", "/2015-03-31/functions/fn?Qualifier=1221", "", nil, []string{"<fn-name>", "fn"}},
		{"TestLambdaFunction::test_get_function_wrong_region[get_function]", "wrong_region_exception", "GET", "/2015-03-31/functions/arn:aws:lambda:eu-west-1:123456789012:function:fn", "", nil, []string{"<wrong-region>", "eu-west-1"}},
		{"TestLambdaFunction::test_invalid_invoke", "invoke_function_name_pattern_exc", "POST", "/2015-03-31/functions/arn:aws:lambda:us-east-1:123400000000@function:myfn/invocations", "{}", nil, nil},
		{"TestLambdaVersions::test_publish_with_wrong_sha256", "publish_wrong_sha256_exc", "POST", "/2015-03-31/functions/fn/versions", `{"CodeSha256":"somenonexistentsha256"}`, nil, []string{"<code-sha256:1>", sha}},
		{"TestLambdaVersions::test_publish_with_wrong_revisionid", "publish_wrong_revisionid_exc", "POST", "/2015-03-31/functions/fn/versions", `{"RevisionId":"wrong"}`, nil, nil},
		{"TestLambdaAlias::test_non_existent_alias_update", "update_alias_response", "PUT", "/2015-03-31/functions/fn/aliases/non-existent", `{"FunctionVersion":"1"}`, nil, []string{"<function-name:1>", "fn"}},
		{"TestLambdaAlias::test_alias_naming", "create_alias_number_exception", "POST", "/2015-03-31/functions/fn/aliases", `{"Name":"2024","FunctionVersion":"1"}`, nil, nil},
		{"TestLambdaReservedConcurrency::test_function_concurrency_exceptions", "put_function_concurrency_with_qualified_arn", "PUT", "/2017-10-31/functions/" + arn + ":1/concurrency", `{"ReservedConcurrentExecutions":1}`, nil, nil},
		{"TestLambdaReservedConcurrency::test_function_concurrency_exceptions", "put_function_concurrency_with_function_name_doesnotexist", "PUT", "/2017-10-31/functions/doesnotexist/concurrency", `{"ReservedConcurrentExecutions":1}`, nil, nil},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "get_provisioned_config_doesnotexist", "GET", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=1", "", nil, nil},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "get_provisioned_qualifier_doesnotexist", "GET", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=noalias", "", nil, []string{"<function-name:1>", "fn"}},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "get_provisioned_latest", "GET", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=$LATEST", "", nil, nil},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "put_provisioned_invalid_param_0", "PUT", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=1", `{"ProvisionedConcurrentExecutions":0}`, nil, nil},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "put_provisioned_latest", "PUT", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=$LATEST", `{"ProvisionedConcurrentExecutions":1}`, nil, nil},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "put_provisioned_version_doesnotexist", "PUT", "/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=10", `{"ProvisionedConcurrentExecutions":1}`, nil, []string{"<function-name:1>", "fn"}},
		{"TestLambdaProvisionedConcurrency::test_provisioned_concurrency_exceptions", "list_provisioned_functionname_doesnotexist", "GET", "/2019-09-30/functions/doesnotexist/provisioned-concurrency?List=ALL", "", nil, nil},
		{"TestLambdaTags::test_tag_exceptions", "tag_lambda_qualifier_doesnotexist", "POST", "/2017-03-31/tags/" + arn + ":v1", `{"Tags":{"a":"b"}}`, nil, nil},
		{"TestLambdaTags::test_tag_exceptions", "untag_empty_keys", "DELETE", "/2017-03-31/tags/" + arn, "", nil, nil},
		{"TestLambdaTags::test_tag_exceptions", "tag_empty_tags", "POST", "/2017-03-31/tags/" + arn, `{"Tags":{}}`, nil, nil},
		{"TestLambdaTags::test_tag_exceptions", "tag_lambda_invalidarn", "POST", "/2017-03-31/tags/arn:aws:something", `{"Tags":{"a":"b"}}`, nil, nil},
		{cpTags, "not_found_exception_tag", "POST", "/2017-03-31/tags/" + cpARN("gone"), `{"Tags":{"a":"b"}}`, nil, []string{"<resource-name>", "gone"}},
		{cpTags, "not_found_exception_untag", "DELETE", "/2017-03-31/tags/" + cpARN("gone") + "?tagKeys=a", "", nil, []string{"<resource-name>", "gone"}},
		{cpTags, "not_found_exception_list", "GET", "/2017-03-31/tags/" + cpARN("gone"), "", nil, []string{"<resource-name>", "gone"}},
		{cpTags, "aliased_arn_exception", "POST", "/2017-03-31/tags/" + cpARN("gone") + ":alias", `{"Tags":{"a":"b"}}`, nil, []string{"<resource-name>", "gone"}},
		{cpTags, "invalid_arn_exception", "POST", "/2017-03-31/tags/arn:aws:lambda:us-east-1:123456789012:foobar:gone", `{"Tags":{"a":"b"}}`, nil, []string{"<resource-name>", "gone"}},
	} {
		t.Run(tc.test+"/"+tc.step, func(t *testing.T) {
			rec := recording(t, tc.test, tc.step)
			recErr := rec["Error"].(map[string]any)
			wantStatus := int(rec["ResponseMetadata"].(map[string]any)["HTTPStatusCode"].(float64))
			resp, body := rawDo(t, tc.method, e.url+tc.path, strings.NewReader(tc.body), tc.headers)
			if resp.StatusCode != wantStatus {
				t.Errorf("status %d, AWS %d", resp.StatusCode, wantStatus)
			}
			if got, want := resp.Header.Get("X-Amzn-ErrorType"), recErr["Code"].(string); got != want {
				t.Errorf("error type %q, AWS %q", got, want)
			}
			wantMsg, _ := recErr["Message"].(string)
			if errs, ok := recErr["Errors"].([]any); ok && len(errs) == 1 {
				wantMsg = "1 validation error detected: " + errs[0].(string)
			}
			wantMsg = placeholders(wantMsg, tc.replace...)
			if wantMsg == "" {
				t.Fatal("recording has no message")
			}
			gotMsg, _ := body["message"].(string)
			if m, ok := body["Message"].(string); ok {
				gotMsg = m
			}
			if gotMsg != wantMsg {
				t.Errorf("message\n got: %s\n AWS: %s", gotMsg, wantMsg)
			}
			if recErr["Code"] != "ValidationException" {
				if diff := cmp.Diff(bodyKeys(rec), bodyKeys(body)); diff != "" {
					t.Errorf("error body keys (-AWS +shoal):\n%s", diff)
				}
			}
		})
	}
}

func keysOf(m map[string]any) []string {
	var keys []string
	for k := range m {
		if k != "ResponseMetadata" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func TestFieldSetsMatchRecordings(t *testing.T) {
	e := newEnv(t)
	zip := base64.StdEncoding.EncodeToString(makeZip(t, map[string]string{"index.py": "x"}))
	post := func(path, body string) map[string]any {
		_, m := rawDo(t, "POST", e.url+path, strings.NewReader(body), nil)
		return m
	}
	get := func(path string) map[string]any {
		_, m := rawDo(t, "GET", e.url+path, nil, nil)
		return m
	}
	created := post("/2015-03-31/functions", `{"FunctionName":"fn","Role":"arn:aws:iam::123456789012:role/r","Runtime":"python3.12","Handler":"index.handler","Code":{"ZipFile":"`+zip+`"}}`)
	withEnv := post("/2015-03-31/functions", `{"FunctionName":"env","Role":"arn:aws:iam::123456789012:role/r","Runtime":"python3.12","Handler":"handler.handler","Environment":{"Variables":{}},"Code":{"ZipFile":"`+zip+`"}}`)
	gotFn := get("/2015-03-31/functions/fn")
	updated := func() map[string]any {
		_, m := rawDo(t, "PUT", e.url+"/2015-03-31/functions/fn/code", strings.NewReader(`{"ZipFile":"`+base64.StdEncoding.EncodeToString(makeZip(t, map[string]string{"b": "y"}))+`"}`), nil)
		return m
	}()
	published := post("/2015-03-31/functions/fn/versions", `{"Description":"d"}`)
	versions := get("/2015-03-31/functions/fn/versions")["Versions"].([]any)
	listed := get("/2015-03-31/functions/")["Functions"].([]any)
	alias := post("/2015-03-31/functions/fn/aliases", `{"Name":"live","FunctionVersion":"1","Description":"custom-alias"}`)
	_, pc := rawDo(t, "PUT", e.url+"/2019-09-30/functions/fn/provisioned-concurrency?Qualifier=1", strings.NewReader(`{"ProvisionedConcurrentExecutions":1}`), nil)
	_, reserved := rawDo(t, "PUT", e.url+"/2017-10-31/functions/fn/concurrency", strings.NewReader(`{"ReservedConcurrentExecutions":1}`), nil)
	account := get("/2016-08-19/account-settings/")

	for _, tc := range []struct {
		name, test, step string
		aws              func(m map[string]any) map[string]any
		shoal            map[string]any
	}{
		{"create", "TestLambdaFunction::test_lambda_code_location_zipfile", "create-response-zip-file", nil, created},
		{"create with environment", "TestLambdaFunction::test_function_lifecycle", "create_response", func(m map[string]any) map[string]any { return m["CreateFunctionResponse"].(map[string]any) }, withEnv},
		{"get function", "TestLambdaFunction::test_lambda_code_location_zipfile", "get-function-response", nil, gotFn},
		{"get function configuration", "TestLambdaFunction::test_lambda_code_location_zipfile", "get-function-response", func(m map[string]any) map[string]any { return m["Configuration"].(map[string]any) }, gotFn["Configuration"].(map[string]any)},
		{"update code", "TestLambdaFunction::test_lambda_code_location_zipfile", "update-function-response", nil, updated},
		{"publish", "TestLambdaVersions::test_version_lifecycle", "first_publish_response", nil, published},
		{"list versions item", "TestLambdaVersions::test_version_lifecycle", "list_versions_result", func(m map[string]any) map[string]any { return m["Versions"].([]any)[0].(map[string]any) }, versions[0].(map[string]any)},
		{"list functions item", "TestLambdaFunction::test_list_functions", "list_default", func(m map[string]any) map[string]any { return m["Functions"].([]any)[0].(map[string]any) }, listed[0].(map[string]any)},
		{"alias", "TestLambdaAlias::test_alias_lifecycle", "create_alias_1_2", nil, alias},
		{"provisioned", "TestLambdaProvisionedConcurrency::test_lambda_provisioned_lifecycle", "put_provisioned_on_version", nil, pc},
		{"reserved", "TestLambdaReservedConcurrency::test_function_concurrency", "put_function_concurrency_with_reserved_1", nil, reserved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := recording(t, tc.test, tc.step)
			if tc.aws != nil {
				rec = tc.aws(rec)
			}
			if len(keysOf(rec)) == 0 {
				t.Fatalf("recording has only %v", keysOf(rec))
			}
			if diff := cmp.Diff(keysOf(rec), keysOf(tc.shoal)); diff != "" {
				t.Errorf("fields (-AWS +shoal):\n%s", diff)
			}
		})
	}
	t.Run("account settings", func(t *testing.T) {
		rec := recording(t, "TestLambdaAccountSettings::test_account_settings", "acc_settings_modded")
		for _, part := range []string{"AccountLimit", "AccountUsage"} {
			var want []string
			for _, k := range rec[part].([]any) {
				want = append(want, k.(string))
			}
			if diff := cmp.Diff(want, keysOf(account[part].(map[string]any))); diff != "" {
				t.Errorf("%s fields (-AWS +shoal):\n%s", part, diff)
			}
		}
	})
	if created["State"] != "Pending" || gotFn["Configuration"].(map[string]any)["State"] != "Active" {
		t.Errorf("states: create %v, get %v", created["State"], gotFn["Configuration"].(map[string]any)["State"])
	}
}
