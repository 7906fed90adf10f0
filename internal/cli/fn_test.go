package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
)

// A function's configuration prints its numbers as integers, whatever their size.
func TestPrintConfigIntegers(t *testing.T) {
	var b bytes.Buffer
	err := printConfig(&b, &clientFlags{output: "table"}, &lambda.GetFunctionConfigurationOutput{
		FunctionName: aws.String("hello"), CodeSize: 6507309, MemorySize: aws.Int32(10240), Timeout: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CodeSize      6507309\n", "MemorySize    10240\n", "Timeout       900\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "e+") {
		t.Errorf("a number in exponent form:\n%s", b.String())
	}
}
