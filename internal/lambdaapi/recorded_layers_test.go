package lambdaapi

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Layers: publishing, reading, listing, deleting, their permissions, and the
// layers of a function.

// dummyLayer is a layer package of the size of LocalStack's testlayer.zip (169
// bytes), which the recorded tests publish.
func dummyLayer(t testing.TB) []byte {
	t.Helper()
	return packageOfSize(t, "python/testlayer.py", "X = 1\n#", 169)
}

// architectures are LocalStack's ARCHITECTURES, which the compatibility test sends.
var architectures = []types.Architecture{types.ArchitectureArm64, types.ArchitectureX8664}

func runtimes(names ...string) []types.Runtime {
	out := make([]types.Runtime, len(names))
	for i, n := range names {
		out[i] = types.Runtime(n)
	}
	return out
}

func (r *replay) publishLayer(step string, in *lambda.PublishLayerVersionInput) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.PublishLayerVersion(ctx, in)
		return err
	})
}

func (r *replay) layerInput(name string, mods ...func(*lambda.PublishLayerVersionInput)) *lambda.PublishLayerVersionInput {
	in := &lambda.PublishLayerVersionInput{
		LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: dummyLayer(r.t)},
		CompatibleRuntimes: []types.Runtime{types.RuntimePython312}, CompatibleArchitectures: []types.Architecture{types.ArchitectureX8664},
	}
	for _, m := range mods {
		m(in)
	}
	return in
}

func (r *replay) getLayerVersion(step, name string, version int64) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetLayerVersion(ctx, &lambda.GetLayerVersionInput{LayerName: aws.String(name), VersionNumber: aws.Int64(version)})
		return err
	})
}

func (r *replay) deleteLayerVersion(step, name string, version int64) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.DeleteLayerVersion(ctx, &lambda.DeleteLayerVersionInput{LayerName: aws.String(name), VersionNumber: aws.Int64(version)})
		return err
	})
}

func (r *replay) listLayerVersions(step, name string) map[string]any {
	r.t.Helper()
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.ListLayerVersions(ctx, &lambda.ListLayerVersionsInput{LayerName: aws.String(name)})
		return err
	})
}

// parsed records a step whose answer holds a JSON document in a string member (a
// policy or a statement), as the recordings show it: parsed.
func (r *replay) parsed(step, member string, out map[string]any) {
	r.t.Helper()
	if s, ok := out[member].(string); ok {
		var doc any
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			r.t.Fatalf("step %s: %s is not JSON: %v", step, member, err)
		}
		out[member] = doc
	}
	r.record(step, out)
}

func (r *replay) addLayerPermission(step string, in *lambda.AddLayerVersionPermissionInput) map[string]any {
	r.t.Helper()
	out := r.do("", func(ctx context.Context, c *lambda.Client) error {
		_, err := c.AddLayerVersionPermission(ctx, in)
		return err
	})
	if step != "" {
		r.parsed(step, "Statement", out)
	}
	return out
}

func (r *replay) getLayerPolicy(step, name string, version int64) map[string]any {
	r.t.Helper()
	out := r.do("", func(ctx context.Context, c *lambda.Client) error {
		_, err := c.GetLayerVersionPolicy(ctx, &lambda.GetLayerVersionPolicyInput{LayerName: aws.String(name), VersionNumber: aws.Int64(version)})
		return err
	})
	if step != "" {
		r.parsed(step, "Policy", out)
	}
	return out
}

func (r *replay) removeLayerPermission(step, name string, version int64, sid, revision string) map[string]any {
	r.t.Helper()
	in := &lambda.RemoveLayerVersionPermissionInput{LayerName: aws.String(name), VersionNumber: aws.Int64(version), StatementId: aws.String(sid)}
	if revision != "" {
		in.RevisionId = aws.String(revision)
	}
	return r.do(step, func(ctx context.Context, c *lambda.Client) error {
		_, err := c.RemoveLayerVersionPermission(ctx, in)
		return err
	})
}

func getLayerPermissionInput(name string, version int64, sid string) *lambda.AddLayerVersionPermissionInput {
	return &lambda.AddLayerVersionPermissionInput{LayerName: aws.String(name), VersionNumber: aws.Int64(version),
		Action: aws.String("lambda:GetLayerVersion"), Principal: aws.String("*"), StatementId: aws.String(sid)}
}

// compatibilityScenario publishes one layer compatible with a batch of runtimes
// (LocalStack's ALL_RUNTIMES in batches of 15, as recorded).
func compatibilityScenario(id string, rts ...string) recordedScenario {
	return recordedScenario{id: id, run: func(r *replay) {
		name := r.name("testlayer")
		r.publishLayer("publish_result", r.layerInput(name, func(in *lambda.PublishLayerVersionInput) {
			in.CompatibleRuntimes, in.CompatibleArchitectures = runtimes(rts...), architectures
		}))
	}}
}

var layerScenarios = []recordedScenario{
	compatibilityScenario("TestLambdaLayer::test_layer_compatibilities[runtimes0]",
		"nodejs24.x", "nodejs22.x", "nodejs20.x", "nodejs18.x", "nodejs16.x", "nodejs14.x", "nodejs12.x",
		"python3.14", "python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8", "python3.7"),
	compatibilityScenario("TestLambdaLayer::test_layer_compatibilities[runtimes1]",
		"java25", "java21", "java17", "java11", "java8.al2", "java8", "dotnet10", "dotnet8", "dotnet6", "dotnetcore3.1",
		"go1.x", "ruby3.4", "ruby3.3", "ruby3.2", "ruby2.7"),
	compatibilityScenario("TestLambdaLayer::test_layer_compatibilities[runtimes2]", "provided.al2023", "provided.al2", "provided"),
	{id: "TestLambdaLayer::test_layer_exceptions", run: func(r *replay) {
		name := r.name("testlayer")
		pub := r.publishLayer("publish_result", r.layerInput(name))
		r.do("list_layers_exc_compatibleruntime_invalid", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.ListLayers(ctx, &lambda.ListLayersInput{CompatibleRuntime: "runtimedoesnotexist"})
			return err
		})
		r.do("list_layers_exc_compatiblearchitecture_invalid", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.ListLayers(ctx, &lambda.ListLayersInput{CompatibleArchitecture: "archdoesnotexist"})
			return err
		})
		r.listLayerVersions("list_nonexistent_layer", "layerdoesnotexist")
		r.getLayerVersion("get_layer_version_exc_layer_doesnotexist", "layerdoesnotexist", 1)
		r.getLayerVersion("get_layer_version_exc_layer_version_doesnotexist_negative", name, -1)
		r.getLayerVersion("get_layer_version_exc_layer_version_doesnotexist_zero", name, 0)
		r.getLayerVersion("get_layer_version_exc_layer_version_doesnotexist_2", name, 2)
		layerArn := field(pub, "LayerArn")
		r.do("get_layer_version_by_arn_exc_invalidarn", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(layerArn)})
			return err
		})
		r.do("get_layer_version_by_arn_exc_nonexistentversion", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(layerArn + ":2")})
			return err
		})
		r.deleteLayerVersion("delete_nonexistent_response", "layerdoesnotexist", 1)
		r.deleteLayerVersion("delete_nonexistent_version_response", name, 2)
		r.deleteLayerVersion("delete_layer_response", name, 1)
		r.deleteLayerVersion("delete_layer_again_response", name, 1)
		r.deleteLayerVersion("delete_layer_version_exc_layerversion_invalid_version", name, -1)
		r.publishLayer("publish_empty_result", r.layerInput(r.name("testlayer-empty"), func(in *lambda.PublishLayerVersionInput) {
			in.CompatibleRuntimes, in.CompatibleArchitectures = []types.Runtime{}, []types.Architecture{}
		}))
		r.publishLayer("publish_layer_version_exc_invalid_runtime_arch", r.layerInput(r.name("testlayer-2"), func(in *lambda.PublishLayerVersionInput) {
			in.CompatibleRuntimes, in.CompatibleArchitectures = runtimes("invalidruntime"), []types.Architecture{"invalidarch"}
		}))
		r.publishLayer("publish_layer_version_exc_partially_invalid_values", r.layerInput(r.name("testlayer-2"), func(in *lambda.PublishLayerVersionInput) {
			in.CompatibleRuntimes = runtimes("invalidruntime", "invalidruntime2", "nodejs20.x")
			in.CompatibleArchitectures = []types.Architecture{"invalidarch", types.ArchitectureX8664}
		}))
	}},
	{id: "TestLambdaLayer::test_layer_function_exceptions", run: func(r *replay) {
		fn, name := r.name("fn-layer"), r.name("testlayer")
		noRuntimes := func(in *lambda.PublishLayerVersionInput) { in.CompatibleRuntimes = []types.Runtime{} }
		p1 := r.publishLayer("publish_result", r.layerInput(name, noRuntimes))
		p2 := r.publishLayer("publish_result_2", r.layerInput(name, noRuntimes))
		p3 := r.publishLayer("publish_result_3", r.layerInput(name, noRuntimes))
		r.ok(r.fixtureCreate("", fn))
		r.getFunction("get_fn_result", fn)
		layers := func(step string, arns ...string) {
			r.updateConfiguration(step, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn), Layers: arns})
		}
		v1, v2, v3 := field(p1, "LayerVersionArn"), field(p2, "LayerVersionArn"), field(p3, "LayerVersionArn")
		layers("two_layer_versions_single_function_exc", v1, v2)
		layers("three_layer_versions_single_function_exc", v1, v2, v3)
		layers("two_identical_layer_versions_single_function_exc", v1, v1)
		arn := field(p1, "LayerArn")
		layers("add_nonexistent_layer_exc", "arn:aws:lambda:us-east-1:"+recordingsAccount+":layer:doesnotexist:1")
		layers("add_nonexistent_layer_version_exc", arn+":9")
		layers("add_layer_arn_without_version_exc", arn)
		// A layer of the same name in a second region (LocalStack's secondary region).
		other := fmt.Sprintf("arn:aws:lambda:eu-west-1:%s:layer:%s:1", recordingsAccount, name)
		r.fixtureCreate("create_function_with_layer_in_different_region", fn, func(in *lambda.CreateFunctionInput) { in.Layers = []string{other} })
	}},
	{id: "TestLambdaLayer::test_layer_function_quota_exception", run: func(r *replay) {
		var arns []string
		for n := 1; n <= 6; n++ {
			out := r.ok(r.publishLayer("", r.layerInput(r.name(fmt.Sprintf("testlayer-%d", n)), func(in *lambda.PublishLayerVersionInput) {
				in.CompatibleRuntimes = []types.Runtime{}
			})))
			arns = append(arns, field(out, "LayerVersionArn"))
		}
		r.fixtureCreate("create_function_with_six_layers", r.name("fn-layer"), func(in *lambda.CreateFunctionInput) { in.Layers = arns })
	}},
	{id: "TestLambdaLayer::test_layer_lifecycle", run: func(r *replay) {
		fn, name := r.name("fn-layer"), r.name("testlayer")
		r.bind["<license-info>"], r.bind["<description>"] = "licenseinfo-"+r.prefix, "description-"+r.prefix
		r.ok(r.fixtureCreate("", fn))
		r.getFunction("get_fn_result", fn)
		r.getConfiguration("get_fn_config_result", fn)
		described := func(in *lambda.PublishLayerVersionInput) {
			in.LicenseInfo, in.Description = aws.String("licenseinfo-"+r.prefix), aws.String("description-"+r.prefix)
		}
		p1 := r.publishLayer("publish_result", r.layerInput(name, described))
		r.publishLayer("publish_result_2", r.layerInput(name, described))
		r.updateConfiguration("update_fn_config", &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(fn), Layers: []string{field(p1, "LayerVersionArn")}})
		r.getConfiguration("get_fn_config", fn)
		r.getLayerVersion("get_layer_ver_result", name, 1)
		r.do("get_layer_by_arn_version", func(ctx context.Context, c *lambda.Client) error {
			_, err := c.GetLayerVersionByArn(ctx, &lambda.GetLayerVersionByArnInput{Arn: aws.String(field(p1, "LayerVersionArn"))})
			return err
		})
		r.listLayerVersions("list_layer_versions_predelete", name)
		r.deleteLayerVersion("delete_layer_1", name, 1)
		r.getConfiguration("get_fn_config_postdelete", fn)
		r.deleteLayerVersion("delete_layer_2", name, 2)
		r.listLayerVersions("list_layer_versions_postdelete", name)
		r.publishLayer("publish_result_3", r.layerInput(name, described))
	}},
	{id: "TestLambdaLayer::test_layer_policy_exceptions", run: func(r *replay) {
		name := r.name("layer4policy")
		r.publishLayer("publish_result", r.layerInput(name))
		r.getLayerPolicy("layer_permission_nopolicy_get", name, 1)
		r.addLayerPermission("add_layer_permission_result", getLayerPermissionInput(name, 1, "s1"))
		bad := getLayerPermissionInput(name, 1, "s-"+r.prefix)
		bad.Action = aws.String("*")
		r.addLayerPermission("layer_permission_action_invalid", bad)
		r.addLayerPermission("layer_permission_duplicate_statement", getLayerPermissionInput(name, 1, "s1"))
		wrong := getLayerPermissionInput(name, 1, "s2")
		wrong.RevisionId = aws.String("wrong")
		r.addLayerPermission("layer_permission_wrong_revision", wrong)
		missing := name + "-doesnotexist"
		r.addLayerPermission("layer_permission_layername_doesnotexist_add", getLayerPermissionInput(missing, 1, "s-"+r.prefix))
		r.getLayerPolicy("layer_permission_layername_doesnotexist_get", missing, 1)
		r.removeLayerPermission("layer_permission_layername_doesnotexist_remove", missing, 1, "s1", "")
		r.addLayerPermission("layer_permission_layerversion_doesnotexist_add", getLayerPermissionInput(name, 2, "s-"+r.prefix))
		r.getLayerPolicy("layer_permission_layerversion_doesnotexist_get", name, 2)
		r.removeLayerPermission("layer_permission_layerversion_doesnotexist_remove", name, 2, "s1", "")
		r.removeLayerPermission("layer_permission_statementid_doesnotexist_remove", name, 1, "doesnotexist", "")
		r.removeLayerPermission("layer_permission_wrong_revision_remove", name, 1, "s1", "wrong")
	}},
	{id: "TestLambdaLayer::test_layer_policy_lifecycle", run: func(r *replay) {
		name := r.name("testlayer")
		r.publishLayer("publish_result", r.layerInput(name))
		r.addLayerPermission("add_policy_s1", getLayerPermissionInput(name, 1, "s1"))
		pol := r.getLayerPolicy("get_layer_version_policy", name, 1)
		s2 := getLayerPermissionInput(name, 1, "s2")
		s2.RevisionId = aws.String(field(pol, "RevisionId"))
		r.addLayerPermission("add_policy_s2", s2)
		pol2 := r.getLayerPolicy("get_layer_version_policy_postadd2", name, 1)
		r.removeLayerPermission("remove_s2", name, 1, "s2", field(pol2, "RevisionId"))
		r.getLayerPolicy("get_layer_version_policy_postdeletes2", name, 1)
	}},
}

// TestRecordedLayers replays the layer scenarios.
func TestRecordedLayers(t *testing.T) {
	newReplayServer(t).runAll(t, layerScenarios)
}
