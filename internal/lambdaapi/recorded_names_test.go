package lambdaapi

import (
	"context"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// Function names, qualifiers and ARNs: test_function_name_and_qualifier_validation
// sends each of these to GetFunction, DeleteFunction, Invoke and CreateFunction
// (which gets "name:qualifier" as its FunctionName) and records the error's code
// and the constraints it lists, sorted.
var nameCases = []struct {
	id        string
	name      string
	qualifier *string
}{
	{"invalid_characters_in_function_name", "my-function!", nil},
	{"function_name_is_single_invalid", "*", nil},
	{"invalid_characters_in_qualifier", "my-function", aws.String("invalid!")},
	{"qualifier_too_long", "my-function", aws.String(strings.Repeat("a", 129))},
	{"invalid_account_id_in_partial_arn", "invalid-account:function:my-function", nil},
	{"invalid_region_in_arn", "arn:aws:lambda:invalid-region:{account_id}:function:my-function", nil},
	{"non_lambda_arn", "arn:aws:ec2:{region_name}:{account_id}:instance:i-1234567890abcdef0", nil},
	{"function_name_too_long", strings.Repeat("a", 65), nil},
	{"function_name_too_long_and_invalid_region", "arn:aws:lambda:invalid-region:{account_id}:function:my-function" + strings.Repeat("a", 170), nil},
	{"full_arn_and_qualifier_too_long_and_invalid_region", "arn:aws:lambda:invalid-region:{account_id}:function:my-function-" + strings.Repeat("a", 170), aws.String(strings.Repeat("a", 129))},
	{"full_arn_with_multiple_qualifiers", "arn:aws:lambda:{region_name}:{account_id}:function:my-function:1:2", nil},
	{"incomplete_arn", "arn:aws:lambda:{region_name}:{account_id}:function", nil},
	{"partial_arn_with_extra_qualifier", "function:my-function:$LATEST:extra", nil},
	{"latest_version_with_additional_qualifier", "arn:aws:lambda:{region_name}:{account_id}:function:my-function:$LATEST", aws.String("1")},
	{"lowercase_latest_qualifier", "arn:aws:lambda:{region_name}:{account_id}:function:my-function", aws.String("$latest")},
	{"missing_region_in_arn", "arn:aws:lambda::{account_id}:function:my-function", nil},
	{"missing_account_id_in_arn", "arn:aws:lambda:{region_name}::function:my-function", nil},
	{"misspelled_latest_in_arn", "arn:aws:lambda:{region_name}:{account_id}:function:my-function:$LATES", nil},
}

// nameScenarios are the cases above on each operation. incomplete_arn on
// CreateFunction is not recorded (the test skips it: the call succeeds on AWS).
func nameScenarios() []recordedScenario {
	var out []recordedScenario
	for _, nc := range nameCases {
		for _, op := range []string{"get_function", "delete_function", "invoke", "create_function"} {
			if nc.id == "incomplete_arn" && op == "create_function" {
				continue
			}
			nc, op := nc, op
			out = append(out, recordedScenario{
				id: "TestLambdaFunction::test_function_name_and_qualifier_validation[" + nc.id + "-" + op + "]",
				run: func(r *replay) {
					name := strings.NewReplacer("{account_id}", recordingsAccount, "{region_name}", "us-east-1").Replace(nc.name)
					maxARN := 140
					if op == "invoke" || op == "get_function" {
						maxARN = 170
					}
					for _, n := range []int{maxARN, 129, 65} {
						r.bind["<a:len("+itoa(n)+")>"] = strings.Repeat("a", n)
					}
					var resp map[string]any
					switch op {
					case "get_function":
						resp = r.do("", func(ctx context.Context, c *lambda.Client) error {
							_, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name), Qualifier: nc.qualifier})
							return err
						})
					case "delete_function":
						resp = r.do("", func(ctx context.Context, c *lambda.Client) error {
							_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(name), Qualifier: nc.qualifier})
							return err
						})
					case "invoke":
						resp = r.do("", func(ctx context.Context, c *lambda.Client) error {
							_, err := c.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Qualifier: nc.qualifier})
							return err
						})
					case "create_function":
						full := name
						if nc.qualifier != nil {
							full += ":" + *nc.qualifier
						}
						resp = r.create("", r.awsInput(full))
					}
					r.record(op+"_exception", constraintErrors(resp))
				},
			})
		}
	}
	return out
}

var constraintRE = regexp.MustCompile(`Value '.*?' at '.*?' failed to satisfy constraint: [^;]+`)

// constraintErrors is what the recorded test keeps of an error: its code, and the
// constraints its message lists (sorted, with their count), else its message.
func constraintErrors(resp map[string]any) map[string]any {
	e, _ := resp["Error"].(map[string]any)
	code, _ := e["Code"].(string)
	msg, _ := e["Message"].(string)
	if errs := constraintRE.FindAllString(msg, -1); len(errs) > 0 {
		sort.Strings(errs)
		list := make([]any, len(errs))
		for i, s := range errs {
			list[i] = s
		}
		return map[string]any{"Code": code, "Errors": list, "Count": float64(len(errs))}
	}
	return map[string]any{"Code": code, "Message": msg}
}

// TestRecordedNames replays the name, qualifier and ARN validation scenarios.
func TestRecordedNames(t *testing.T) {
	newReplayServer(t).runAll(t, nameScenarios())
}
