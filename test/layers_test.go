package test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

func publishLayer(t *testing.T, s *shoal, name string, zip []byte) string {
	t.Helper()
	out, err := s.client.PublishLayerVersion(ctx(t), &lambda.PublishLayerVersionInput{
		LayerName: aws.String(name), Content: &types.LayerVersionContentInput{ZipFile: zip},
	})
	if err != nil {
		t.Fatalf("PublishLayerVersion %s: %v", name, err)
	}
	return aws.ToString(out.LayerVersionArn)
}

// Functions that import what only their layers hold run, in shoal's environments
// (isolated when the tests run as root): Python and Node.js modules, a provided
// runtime's bootstrap. A missing layer is refused at create, and deleting a layer
// version leaves the functions that use it running.
func TestLayers(t *testing.T) {
	s := startShoal(t)
	pyLayer := publishLayer(t, s, "pydeps", zipSources(map[string]string{
		"python/greeting.py": "def greet(name):\n    return 'hello ' + name + ' from a python layer'\n",
	}))
	nodeLayer := publishLayer(t, s, "nodedeps", zipSources(map[string]string{
		"nodejs/node_modules/greeting/index.js": "exports.greet = (name) => `hello ${name} from a node layer`;\n",
	}))
	// The aws-lambda-go test function's package holds its bootstrap at the top:
	// as a layer, that is /opt/bootstrap.
	runtimeLayer := publishLayer(t, s, "goruntime", goFnZip)

	createSourceFn(t, s, "py-layer", types.RuntimePython312, "app.handler", map[string]string{
		"app.py": "import greeting\n\ndef handler(event, context):\n    return greeting.greet(event['name'])\n",
	}, pyLayer)
	createSourceFn(t, s, "node-layer", types.RuntimeNodejs20x, "index.handler", map[string]string{
		"index.js": "const { greet } = require('greeting');\nexports.handler = async (event) => greet(event.name);\n",
	}, nodeLayer)
	createSourceFn(t, s, "custom-layer", types.RuntimeProvidedal2023, "bootstrap", map[string]string{
		"README": "the bootstrap comes from a layer\n",
	}, runtimeLayer)

	for _, c := range []struct{ fn, want string }{
		{"py-layer", `"hello py from a python layer"`},
		{"node-layer", `"hello node from a node layer"`},
	} {
		out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String(c.fn), Payload: []byte(`{"name":"` + c.fn[:len(c.fn)-6] + `"}`)})
		if out.FunctionError != nil || string(out.Payload) != c.want {
			t.Errorf("%s: %s %s", c.fn, aws.ToString(out.FunctionError), out.Payload)
		}
	}
	m := decode(t, invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("custom-layer"), Payload: []byte(`{"op":"context"}`)}).Payload)
	if m["function_name"] != "custom-layer" {
		t.Errorf("provided runtime from a layer: %v", m)
	}

	// A layer version that does not exist is refused at create, and nothing is made.
	missing := "arn:aws:lambda:us-east-1:123456789012:layer:nosuch:1"
	_, err := s.client.CreateFunction(ctx(t), &lambda.CreateFunctionInput{
		FunctionName: aws.String("missing-layer"), Runtime: types.RuntimePython312, Handler: aws.String("app.handler"),
		Role: aws.String(role), Code: &types.FunctionCode{ZipFile: zipSources(map[string]string{"app.py": "x = 1\n"})},
		Layers: []string{missing},
	})
	var ip *types.InvalidParameterValueException
	if !isErrAs(err, &ip) || aws.ToString(ip.Message) != "Layer version "+missing+" does not exist." {
		t.Fatalf("a missing layer at create: %v", err)
	}
	if _, err := s.client.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("missing-layer")}); err == nil {
		t.Error("the refused function exists")
	}

	// Deleting the layer version changes nothing for a published version that uses
	// it, even on a cold start.
	v, err := s.client.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("py-layer")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.DeleteLayerVersion(ctx(t), &lambda.DeleteLayerVersionInput{LayerName: aws.String("pydeps"), VersionNumber: aws.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	out := invoke(t, s, &lambda.InvokeInput{FunctionName: aws.String("py-layer"), Qualifier: v.Version, Payload: []byte(`{"name":"again"}`)})
	if out.FunctionError != nil || string(out.Payload) != `"hello again from a python layer"` {
		t.Errorf("after the layer version was deleted: %s %s", aws.ToString(out.FunctionError), out.Payload)
	}
}
