package lambdaapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/awscli"
)

// TestAWSCLI drives the API with the aws CLI v2, as the README's on-demand
// steps do.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the aws CLI")
	}
	cli := awscli.V2(t)
	e := newEnv(t)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, makeZip(t, map[string]string{"bootstrap": "x"}), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := cli.Command(e.url, awscli.AnyKeys, append([]string{"lambda"}, args...)...).CombinedOutput()
		return string(out), err
	}
	mustJSON := func(args ...string) map[string]any {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws lambda %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("aws lambda %s: output %q: %v", strings.Join(args, " "), out, err)
		}
		return m
	}
	created := mustJSON("create-function", "--function-name", "echo", "--runtime", "provided.al2023",
		"--role", "arn:aws:iam::123456789012:role/r", "--handler", "bootstrap", "--zip-file", "fileb://"+zipPath,
		"--memory-size", "128", "--timeout", "10", "--environment", "Variables={K=V}")
	if created["FunctionName"] != "echo" {
		t.Fatalf("create-function: %v", created)
	}
	got := mustJSON("get-function", "--function-name", "echo")
	if got["Configuration"].(map[string]any)["State"] != "Active" {
		t.Errorf("get-function: %v", got)
	}
	if fns := mustJSON("list-functions")["Functions"].([]any); len(fns) != 1 {
		t.Errorf("list-functions: %v", fns)
	}
	mustJSON("publish-version", "--function-name", "echo")
	mustJSON("create-alias", "--function-name", "echo", "--name", "live", "--function-version", "1")
	mustJSON("put-function-concurrency", "--function-name", "echo", "--reserved-concurrent-executions", "5")
	out := filepath.Join(dir, "out.json")
	args := []string{"invoke", "--function-name", "arn:aws:lambda:us-east-1:123456789012:function:echo", "--qualifier", "live",
		"--payload", `{"hello":"world"}`, "--log-type", "Tail", "--cli-binary-format", "raw-in-base64-out"}
	inv := mustJSON(append(args, out)...)
	if inv["StatusCode"] != float64(200) || inv["ExecutedVersion"] != "1" {
		t.Errorf("invoke: %v", inv)
	}
	if b, _ := os.ReadFile(out); string(b) != `{"hello":"world"}` {
		t.Errorf("invoke payload %q", b)
	}
	// Layers and runtime management, as the CLI sends them.
	layerZip := filepath.Join(dir, "layer.zip")
	if err := os.WriteFile(layerZip, makeZip(t, map[string]string{"python/m.py": "X = 1\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	layer := mustJSON("publish-layer-version", "--layer-name", "deps", "--zip-file", "fileb://"+layerZip,
		"--compatible-runtimes", "python3.12", "--compatible-architectures", "x86_64")
	layerArn, _ := layer["LayerVersionArn"].(string)
	if layerArn != "arn:aws:lambda:us-east-1:123456789012:layer:deps:1" {
		t.Fatalf("publish-layer-version: %v", layer)
	}
	if got := mustJSON("get-layer-version-by-arn", "--arn", layerArn); got["Version"] != float64(1) {
		t.Errorf("get-layer-version-by-arn: %v", got)
	}
	if got := mustJSON("list-layers", "--compatible-runtime", "python3.12")["Layers"].([]any); len(got) != 1 {
		t.Errorf("list-layers: %v", got)
	}
	upd := mustJSON("update-function-configuration", "--function-name", "echo", "--layers", layerArn)
	if ls, _ := upd["Layers"].([]any); len(ls) != 1 {
		t.Errorf("update-function-configuration --layers: %v", upd)
	}
	mustJSON("add-layer-version-permission", "--layer-name", "deps", "--version-number", "1", "--statement-id", "all",
		"--action", "lambda:GetLayerVersion", "--principal", "*")
	if got := mustJSON("get-layer-version-policy", "--layer-name", "deps", "--version-number", "1"); !strings.Contains(got["Policy"].(string), `"Sid":"all"`) {
		t.Errorf("get-layer-version-policy: %v", got)
	}
	if got := mustJSON("put-runtime-management-config", "--function-name", "echo", "--update-runtime-on", "FunctionUpdate"); got["UpdateRuntimeOn"] != "FunctionUpdate" {
		t.Errorf("put-runtime-management-config: %v", got)
	}
	if got := mustJSON("get-runtime-management-config", "--function-name", "echo"); got["UpdateRuntimeOn"] != "FunctionUpdate" {
		t.Errorf("get-runtime-management-config: %v", got)
	}
	msg, err := run("get-function", "--function-name", "nope")
	if err == nil || !strings.Contains(msg, "ResourceNotFoundException") || !strings.Contains(msg, "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope") {
		t.Errorf("get-function nope: %v\n%s", err, msg)
	}
	if out, err := run("delete-function", "--function-name", "echo"); err != nil {
		t.Errorf("delete-function: %v\n%s", err, out)
	}
}

// TestAWSCLIManagedInstances drives the capacity provider operations with the
// aws CLI v1, whose botocore (≥ 1.42) has them.
func TestAWSCLIManagedInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the aws CLI")
	}
	cli := awscli.V1(t)
	e := newEnv(t)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "fn.zip")
	if err := os.WriteFile(zipPath, makeZip(t, map[string]string{"app.py": "x"}), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := cli.Command(e.url, awscli.AnyKeys, append([]string{"lambda"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run("create-capacity-provider", "--capacity-provider-name", "cp1",
		"--vpc-config", "SubnetIds=subnet-1,SecurityGroupIds=sg-1",
		"--permissions-config", "CapacityProviderOperatorRoleArn=arn:aws:iam::123456789012:role/op")
	if err != nil && strings.Contains(out, "Invalid choice") {
		t.Skipf("the aws CLI v1 at %s (%s) has no capacity provider commands: %s", cli.Path, cli.Version, out)
	}
	if err != nil {
		t.Fatalf("create-capacity-provider: %v\n%s", err, out)
	}
	var created struct{ CapacityProvider map[string]any }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.CapacityProvider["State"] != "Pending" {
		t.Fatalf("create-capacity-provider: %s (%v)", out, err)
	}
	out, err = run("create-function", "--function-name", "mi", "--runtime", "python3.13", "--role", "arn:aws:iam::123456789012:role/r",
		"--handler", "app.handler", "--zip-file", "fileb://"+zipPath, "--capacity-provider-config",
		"LambdaManagedInstancesCapacityProviderConfig={CapacityProviderArn=arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp1,PerExecutionEnvironmentMaxConcurrency=8,ExecutionEnvironmentMemoryGiBPerVCpu=2.0}")
	if err != nil || !strings.Contains(out, `"PerExecutionEnvironmentMaxConcurrency": 8`) {
		t.Fatalf("create-function: %v\n%s", err, out)
	}
	out, err = run("publish-version", "--function-name", "mi", "--publish-to", "LATEST_PUBLISHED")
	if err != nil || !strings.Contains(out, `"Version": "$LATEST.PUBLISHED"`) {
		t.Fatalf("publish-version: %v\n%s", err, out)
	}
	out, err = run("put-function-scaling-config", "--function-name", "mi", "--qualifier", "$LATEST.PUBLISHED",
		"--function-scaling-config", "MinExecutionEnvironments=0,MaxExecutionEnvironments=0")
	if err != nil || !strings.Contains(out, `"FunctionState": "Deactivating"`) {
		t.Fatalf("put-function-scaling-config: %v\n%s", err, out)
	}
	out, err = run("list-capacity-providers", "--state", "Pending")
	if err != nil || !strings.Contains(out, "capacity-provider:cp1") {
		t.Fatalf("list-capacity-providers: %v\n%s", err, out)
	}
	out, err = run("delete-capacity-provider", "--capacity-provider-name", "cp1")
	if err == nil || !strings.Contains(out, "ResourceConflictException") {
		t.Fatalf("delete-capacity-provider in use: %v\n%s", err, out)
	}
}
