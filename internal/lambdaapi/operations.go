package lambdaapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/shoal-dev/shoal/internal/awserr"
)

// Every operation of the Lambda API, as the AWS SDK for Go v2 knows it (its
// model's HTTP bindings; TestOperationsMatchTheSDK keeps the list in step with
// the SDK). A request the routes do not serve but that one of these would
// make answers that shoal does not implement that operation, with its name:
// an InvalidParameterValueException, the modelled error every client takes
// for "this request can never succeed as sent" and does not retry
// (docs/decisions/unimplemented-operations.md). Any other request is an
// UnknownOperationException, as on AWS.

// operation is one operation's HTTP binding.
type operation struct {
	Name, Method string
	// URI is the model's: a path of literal and {Label} segments, and
	// possibly a query literal (?find=LayerVersion) that tells two
	// operations on one path apart.
	URI string
}

// operations is the SDK's list, in its order.
var operations = []operation{
	{"AddLayerVersionPermission", "POST", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy"},
	{"AddPermission", "POST", "/2015-03-31/functions/{FunctionName}/policy"},
	{"CheckpointDurableExecution", "POST", "/2025-12-01/durable-executions/{DurableExecutionArn}/checkpoint"},
	{"CreateAlias", "POST", "/2015-03-31/functions/{FunctionName}/aliases"},
	{"CreateCapacityProvider", "POST", "/2025-11-30/capacity-providers"},
	{"CreateCodeSigningConfig", "POST", "/2020-04-22/code-signing-configs"},
	{"CreateEventSourceMapping", "POST", "/2015-03-31/event-source-mappings"},
	{"CreateFunction", "POST", "/2015-03-31/functions"},
	{"CreateFunctionUrlConfig", "POST", "/2021-10-31/functions/{FunctionName}/url"},
	{"DeleteAlias", "DELETE", "/2015-03-31/functions/{FunctionName}/aliases/{Name}"},
	{"DeleteCapacityProvider", "DELETE", "/2025-11-30/capacity-providers/{CapacityProviderName}"},
	{"DeleteCodeSigningConfig", "DELETE", "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}"},
	{"DeleteEventSourceMapping", "DELETE", "/2015-03-31/event-source-mappings/{UUID}"},
	{"DeleteFunction", "DELETE", "/2015-03-31/functions/{FunctionName}"},
	{"DeleteFunctionCodeSigningConfig", "DELETE", "/2020-06-30/functions/{FunctionName}/code-signing-config"},
	{"DeleteFunctionConcurrency", "DELETE", "/2017-10-31/functions/{FunctionName}/concurrency"},
	{"DeleteFunctionEventInvokeConfig", "DELETE", "/2019-09-25/functions/{FunctionName}/event-invoke-config"},
	{"DeleteFunctionUrlConfig", "DELETE", "/2021-10-31/functions/{FunctionName}/url"},
	{"DeleteLayerVersion", "DELETE", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}"},
	{"DeleteProvisionedConcurrencyConfig", "DELETE", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency"},
	{"DeleteResourcePolicy", "DELETE", "/2026-07-09/resource-policy/{ResourceArn}"},
	{"GetAccountSettings", "GET", "/2016-08-19/account-settings"},
	{"GetAlias", "GET", "/2015-03-31/functions/{FunctionName}/aliases/{Name}"},
	{"GetCapacityProvider", "GET", "/2025-11-30/capacity-providers/{CapacityProviderName}"},
	{"GetCodeSigningConfig", "GET", "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}"},
	{"GetDurableExecution", "GET", "/2025-12-01/durable-executions/{DurableExecutionArn}"},
	{"GetDurableExecutionHistory", "GET", "/2025-12-01/durable-executions/{DurableExecutionArn}/history"},
	{"GetDurableExecutionState", "GET", "/2025-12-01/durable-executions/{DurableExecutionArn}/state"},
	{"GetEventSourceMapping", "GET", "/2015-03-31/event-source-mappings/{UUID}"},
	{"GetFunction", "GET", "/2015-03-31/functions/{FunctionName}"},
	{"GetFunctionCodeSigningConfig", "GET", "/2020-06-30/functions/{FunctionName}/code-signing-config"},
	{"GetFunctionConcurrency", "GET", "/2019-09-30/functions/{FunctionName}/concurrency"},
	{"GetFunctionConfiguration", "GET", "/2015-03-31/functions/{FunctionName}/configuration"},
	{"GetFunctionEventInvokeConfig", "GET", "/2019-09-25/functions/{FunctionName}/event-invoke-config"},
	{"GetFunctionRecursionConfig", "GET", "/2024-08-31/functions/{FunctionName}/recursion-config"},
	{"GetFunctionScalingConfig", "GET", "/2025-11-30/functions/{FunctionName}/function-scaling-config"},
	{"GetFunctionUrlConfig", "GET", "/2021-10-31/functions/{FunctionName}/url"},
	{"GetLayerVersion", "GET", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}"},
	{"GetLayerVersionByArn", "GET", "/2018-10-31/layers?find=LayerVersion"},
	{"GetLayerVersionPolicy", "GET", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy"},
	{"GetPolicy", "GET", "/2015-03-31/functions/{FunctionName}/policy"},
	{"GetProvisionedConcurrencyConfig", "GET", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency"},
	{"GetResourcePolicy", "GET", "/2026-07-09/resource-policy/{ResourceArn}"},
	{"GetRuntimeManagementConfig", "GET", "/2021-07-20/functions/{FunctionName}/runtime-management-config"},
	{"Invoke", "POST", "/2015-03-31/functions/{FunctionName}/invocations"},
	{"InvokeAsync", "POST", "/2014-11-13/functions/{FunctionName}/invoke-async"},
	{"InvokeWithResponseStream", "POST", "/2021-11-15/functions/{FunctionName}/response-streaming-invocations"},
	{"ListAliases", "GET", "/2015-03-31/functions/{FunctionName}/aliases"},
	{"ListCapacityProviders", "GET", "/2025-11-30/capacity-providers"},
	{"ListCodeSigningConfigs", "GET", "/2020-04-22/code-signing-configs"},
	{"ListDurableExecutionsByFunction", "GET", "/2025-12-01/functions/{FunctionName}/durable-executions"},
	{"ListEventSourceMappings", "GET", "/2015-03-31/event-source-mappings"},
	{"ListFunctionEventInvokeConfigs", "GET", "/2019-09-25/functions/{FunctionName}/event-invoke-config/list"},
	{"ListFunctions", "GET", "/2015-03-31/functions"},
	{"ListFunctionsByCodeSigningConfig", "GET", "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}/functions"},
	{"ListFunctionUrlConfigs", "GET", "/2021-10-31/functions/{FunctionName}/urls"},
	{"ListFunctionVersionsByCapacityProvider", "GET", "/2025-11-30/capacity-providers/{CapacityProviderName}/function-versions"},
	{"ListLayers", "GET", "/2018-10-31/layers"},
	{"ListLayerVersions", "GET", "/2018-10-31/layers/{LayerName}/versions"},
	{"ListProvisionedConcurrencyConfigs", "GET", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency?List=ALL"},
	{"ListTags", "GET", "/2017-03-31/tags/{Resource}"},
	{"ListVersionsByFunction", "GET", "/2015-03-31/functions/{FunctionName}/versions"},
	{"PublishLayerVersion", "POST", "/2018-10-31/layers/{LayerName}/versions"},
	{"PublishVersion", "POST", "/2015-03-31/functions/{FunctionName}/versions"},
	{"PutFunctionCodeSigningConfig", "PUT", "/2020-06-30/functions/{FunctionName}/code-signing-config"},
	{"PutFunctionConcurrency", "PUT", "/2017-10-31/functions/{FunctionName}/concurrency"},
	{"PutFunctionEventInvokeConfig", "PUT", "/2019-09-25/functions/{FunctionName}/event-invoke-config"},
	{"PutFunctionRecursionConfig", "PUT", "/2024-08-31/functions/{FunctionName}/recursion-config"},
	{"PutFunctionScalingConfig", "PUT", "/2025-11-30/functions/{FunctionName}/function-scaling-config"},
	{"PutProvisionedConcurrencyConfig", "PUT", "/2019-09-30/functions/{FunctionName}/provisioned-concurrency"},
	{"PutResourcePolicy", "PUT", "/2026-07-09/resource-policy/{ResourceArn}"},
	{"PutRuntimeManagementConfig", "PUT", "/2021-07-20/functions/{FunctionName}/runtime-management-config"},
	{"RemoveLayerVersionPermission", "DELETE", "/2018-10-31/layers/{LayerName}/versions/{VersionNumber}/policy/{StatementId}"},
	{"RemovePermission", "DELETE", "/2015-03-31/functions/{FunctionName}/policy/{StatementId}"},
	{"SendDurableExecutionCallbackFailure", "POST", "/2025-12-01/durable-execution-callbacks/{CallbackId}/fail"},
	{"SendDurableExecutionCallbackHeartbeat", "POST", "/2025-12-01/durable-execution-callbacks/{CallbackId}/heartbeat"},
	{"SendDurableExecutionCallbackSuccess", "POST", "/2025-12-01/durable-execution-callbacks/{CallbackId}/succeed"},
	{"StopDurableExecution", "POST", "/2025-12-01/durable-executions/{DurableExecutionArn}/stop"},
	{"TagResource", "POST", "/2017-03-31/tags/{Resource}"},
	{"UntagResource", "DELETE", "/2017-03-31/tags/{Resource}"},
	{"UpdateAlias", "PUT", "/2015-03-31/functions/{FunctionName}/aliases/{Name}"},
	{"UpdateCapacityProvider", "PUT", "/2025-11-30/capacity-providers/{CapacityProviderName}"},
	{"UpdateCodeSigningConfig", "PUT", "/2020-04-22/code-signing-configs/{CodeSigningConfigArn}"},
	{"UpdateEventSourceMapping", "PUT", "/2015-03-31/event-source-mappings/{UUID}"},
	{"UpdateFunctionCode", "PUT", "/2015-03-31/functions/{FunctionName}/code"},
	{"UpdateFunctionConfiguration", "PUT", "/2015-03-31/functions/{FunctionName}/configuration"},
	{"UpdateFunctionEventInvokeConfig", "POST", "/2019-09-25/functions/{FunctionName}/event-invoke-config"},
	{"UpdateFunctionUrlConfig", "PUT", "/2021-10-31/functions/{FunctionName}/url"},
}

// whyUnimplemented says, for the groups of operations shoal leaves out, what
// they would need.
var whyUnimplemented = []struct{ fragment, why string }{
	{"CodeSigning", "code signing, which shoal does not implement"},
	{"DurableExecution", "durable executions, which shoal does not run"},
	{"EventSourceMapping", "event source mappings, which need queues and streams (SQS, Kinesis, DynamoDB, Kafka, MQ) that shoal does not run"},
	{"ResourcePolicy", "resource-based policies for resources other than functions, which shoal does not implement"},
}

// unimplemented answers a request no route serves.
func (a *api) unimplemented(w http.ResponseWriter, r *http.Request) error {
	op := matchOperation(r.Method, r.URL)
	if op == nil {
		return awserr.UnknownOperation("Unknown operation %s %s", r.Method, r.URL.Path)
	}
	msg := "shoal does not implement the " + op.Name + " operation"
	for _, g := range whyUnimplemented {
		if strings.Contains(op.Name, g.fragment) {
			msg += ": it belongs to " + g.why
			break
		}
	}
	return awserr.InvalidParameter("%s.", msg)
}

// matchOperation returns the operation a request would be, nil if none. An
// operation with a query literal is preferred when the request has it.
func matchOperation(method string, u *url.URL) *operation {
	segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	var best *operation
	for i := range operations {
		op := &operations[i]
		if op.Method != method {
			continue
		}
		path, query, _ := strings.Cut(op.URI, "?")
		if !matchSegments(strings.Split(strings.Trim(path, "/"), "/"), segs) {
			continue
		}
		if query == "" {
			if best == nil {
				best = op
			}
			continue
		}
		k, v, _ := strings.Cut(query, "=")
		if u.Query().Get(k) == v {
			return op
		}
	}
	return best
}

func matchSegments(tmpl, segs []string) bool {
	if len(tmpl) != len(segs) {
		return false
	}
	for i, t := range tmpl {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if t != segs[i] {
			return false
		}
	}
	return true
}
