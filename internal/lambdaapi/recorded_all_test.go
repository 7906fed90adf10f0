package lambdaapi

import (
	"sort"
	"strings"
	"testing"
)

// Why the scenarios of test_lambda_api.snapshot.json that are not replayed are left
// out.
const (
	whyCodeSigning      = "needs code signing configs, which shoal does not implement"
	whyPermissionsStale = "stale: recorded in 2022 from a revision of the test (LocalStack fe9811f9d) that no revision of test_lambda_api.py holds; AWS no longer renews a policy's RevisionId on publish as it did then (test_lambda_permission_fn_versioning, replayed, records today's behaviour)"
	whyESM              = "needs event source mappings (and SQS, Kinesis, DynamoDB streams), which shoal does not implement"
	whyImages           = "needs container images from ECR (PackageType Image), which shoal does not run"
	whyS3               = "needs code from S3 (S3Bucket, S3Key), which shoal does not implement"
	whyVPC              = "needs real VPC resources (EC2 subnets and security groups)"
	whyRuntime          = "creates a function on a runtime shoal cannot run (Java or .NET), which shoal refuses (docs/decisions/recorded-answers-not-followed.md)"
	whyRegions          = "needs a second region and account to reach the function from; nothing is recorded"
	whyStale            = "stale id from an unmerged revision of the parametrisation (LocalStack ff1c31bce): no revision of test_lambda_api.py holds the request that produced it"
	whyNotRecorded      = "nothing is recorded: the test skips itself (the call succeeds on AWS)"
)

var leftOut = map[string]string{
	"TestLambdaFunction::test_ops_on_nonexisting_fn[get_function_code_signing_config]":                whyCodeSigning,
	"TestLambdaFunction::test_get_function_wrong_region[get_function_code_signing_config]":            whyCodeSigning,
	"TestCodeSigningConfig::test_function_code_signing_config":                                        whyCodeSigning,
	"TestCodeSigningConfig::test_code_signing_not_found_excs":                                         whyCodeSigning,
	"TestLambdaPermissions::test_lambda_permission_versioning":                                        whyPermissionsStale,
	"TestLambdaPermissions::test_lambda_permission_revisions":                                         whyPermissionsStale,
	"TestLambdaLayer::test_layer_s3_content":                                                          whyS3,
	"TestLambdaEventSourceMappings::test_event_source_mapping_exceptions":                             whyESM,
	"TestLambdaEventSourceMappings::test_event_source_mapping_lifecycle":                              whyESM,
	"TestLambdaEventSourceMappings::test_event_source_mapping_lifecycle_delete_function":              whyESM,
	"TestLambdaEventSourceMappings::test_function_name_variations":                                    whyESM,
	"TestLambdaEventSourceMappings::test_create_event_source_validation":                              whyESM,
	"TestLambdaEventSourceMappings::test_create_event_source_validation_kinesis":                      whyESM,
	"TestLambdaEventSourceMappings::test_create_event_filter_criteria_validation":                     whyESM,
	"TestLambdaEventSourceMappings::test_create_event_source_self_managed":                            whyESM,
	"TestLambdaTag::test_tag_lifecycle[event_source_mapping]":                                         whyESM,
	"TestLambdaTag::test_create_tag_on_esm_create":                                                    whyESM,
	"TestLambdaTag::test_tag_exceptions[event_source_mapping]":                                        whyESM,
	"TestLambdaImages::test_lambda_image_crud":                                                        whyImages,
	"TestLambdaImages::test_lambda_image_and_image_config_crud":                                       whyImages,
	"TestLambdaImages::test_lambda_zip_file_to_image":                                                 whyImages,
	"TestLambdaImages::test_lambda_image_versions":                                                    whyImages,
	"TestLambdaFunction::test_lambda_code_location_s3":                                                whyS3,
	"TestLambdaFunction::test_lambda_code_location_s3_errors":                                         whyS3,
	"TestLambdaSizeLimits::test_oversized_unzipped_lambda":                                            whyS3,
	"TestLambdaSizeLimits::test_large_lambda":                                                         whyS3,
	"TestLambdaSizeLimits::test_oversized_lambda":                                                     whyS3 + " (an earlier revision of the test, LocalStack 85d1973c6)",
	"TestLambdaFunction::test_vpc_config":                                                             whyVPC,
	"TestLambdaFunction::test_invalid_vpc_config_subnet":                                              whyVPC,
	"TestLambdaFunction::test_invalid_vpc_config_security_group":                                      whyVPC,
	"TestPartialARNMatching::test_cross_region_arn_function_access":                                   whyRegions,
	"TestLambdaFunction::test_function_name_and_qualifier_validation[incomplete_arn-create_function]": whyNotRecorded,
}

func init() {
	for _, rt := range []string{"java11", "java17", "java21", "java25", "dotnet8", "dotnet10"} {
		leftOut["TestLambdaSnapStart::test_snapstart_lifecycle["+rt+"]"] = whyRuntime
		leftOut["TestLambdaSnapStart::test_snapstart_update_function_configuration["+rt+"]"] = whyRuntime
	}
	for _, id := range []string{"qualifier_too_long0", "qualifier_too_long1", "function_name_and_qualifier_too_long"} {
		for _, op := range []string{"get_function", "delete_function", "invoke", "create_function"} {
			leftOut["TestLambdaFunction::test_function_name_and_qualifier_validation["+id+"-"+op+"]"] = whyStale
		}
	}
}

// allScenarioGroups are the replayed scenarios, by group.
func allScenarioGroups() map[string][]recordedScenario {
	return map[string][]recordedScenario{
		"functions":   functionScenarios,
		"names":       nameScenarios(),
		"versions":    versionScenarios,
		"tags":        tagScenarios,
		"concurrency": concurrencyScenarios,
		"config":      configScenarios,
		"layers":      layerScenarios,
		"permissions": permissionScenarios,
		"urls":        urlScenarios,
		"eventinvoke": eventInvokeScenarios,
	}
}

// Every recorded scenario is replayed, or left out with its reason; none twice.
func TestRecordedScenariosAccountedFor(t *testing.T) {
	recorded := recordedScenarios(t)
	seen := map[string]string{}
	covered := 0
	for group, scs := range allScenarioGroups() {
		for _, sc := range scs {
			if _, ok := recorded[sc.id]; !ok {
				t.Errorf("%s replays %s, which is not recorded", group, sc.id)
			}
			if prev, dup := seen[sc.id]; dup {
				t.Errorf("%s is replayed by %s and %s", sc.id, prev, group)
			}
			seen[sc.id] = group
			covered++
		}
	}
	byReason := map[string]int{}
	for id, why := range leftOut {
		if _, ok := recorded[id]; !ok {
			t.Errorf("%s is left out but not recorded", id)
		}
		if g, ok := seen[id]; ok {
			t.Errorf("%s is left out and replayed by %s", id, g)
		}
		if strings.TrimSpace(why) == "" {
			t.Errorf("%s is left out without a reason", id)
		}
		byReason[why]++
	}
	var missing []string
	for id := range recorded {
		if _, ok := seen[id]; !ok {
			if _, ok := leftOut[id]; !ok {
				missing = append(missing, id)
			}
		}
	}
	sort.Strings(missing)
	for _, id := range missing {
		t.Errorf("%s is neither replayed nor left out", id)
	}
	t.Logf("%d recorded scenarios: %d replayed, %d left out", len(recorded), covered, len(leftOut))
	reasons := make([]string, 0, len(byReason))
	for why := range byReason {
		reasons = append(reasons, why)
	}
	sort.Strings(reasons)
	for _, why := range reasons {
		t.Logf("  %3d %s", byReason[why], why)
	}
}
