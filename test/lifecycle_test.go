package test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

const role = "arn:aws:iam::123456789012:role/lambda-role"

func createGoFn(t *testing.T, s *shoal, name string, mutate ...func(*lambda.CreateFunctionInput)) *lambda.CreateFunctionOutput {
	t.Helper()
	in := &lambda.CreateFunctionInput{
		FunctionName: aws.String(name),
		Runtime:      types.RuntimeProvidedal2023,
		Handler:      aws.String("bootstrap"),
		Role:         aws.String(role),
		Code:         &types.FunctionCode{ZipFile: goFnZip},
		MemorySize:   aws.Int32(256),
		Timeout:      aws.Int32(10),
	}
	for _, m := range mutate {
		m(in)
	}
	out, err := s.client.CreateFunction(ctx(t), in)
	if err != nil {
		t.Fatalf("CreateFunction %s: %v", name, err)
	}
	return out
}

func TestFunctionLifecycle(t *testing.T) {
	s := startShoal(t)
	c := s.client
	created := createGoFn(t, s, "life", func(in *lambda.CreateFunctionInput) {
		in.Description = aws.String("first")
		in.Environment = &types.Environment{Variables: map[string]string{"KEY": "VAL"}}
		in.Tags = map[string]string{"team": "platform"}
	})
	if aws.ToString(created.FunctionArn) != "arn:aws:lambda:us-east-1:123456789012:function:life" ||
		aws.ToString(created.Version) != "$LATEST" || aws.ToString(created.CodeSha256) == "" ||
		aws.ToString(created.Role) != role || created.Environment.Variables["KEY"] != "VAL" {
		t.Fatalf("CreateFunction returned %+v", created)
	}

	if _, err := c.CreateFunction(ctx(t), &lambda.CreateFunctionInput{FunctionName: aws.String("life"),
		Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String(role),
		Code: &types.FunctionCode{ZipFile: goFnZip}}); !isErr[*types.ResourceConflictException](err) {
		t.Fatalf("creating it twice: %v, want ResourceConflictException", err)
	}

	got, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("life")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Configuration.Description) != "first" || got.Tags["team"] != "platform" || got.Code == nil {
		t.Fatalf("GetFunction = %+v", got)
	}

	// UpdateFunctionConfiguration takes the RevisionId GetFunction shows (the create
	// answer's was the Pending function's, as on Lambda) and refuses a stale one.
	upd, err := c.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("life"), MemorySize: aws.Int32(512), RevisionId: got.Configuration.RevisionId})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(upd.MemorySize) != 512 || aws.ToString(upd.RevisionId) == aws.ToString(got.Configuration.RevisionId) {
		t.Fatalf("update: memory %d, revision %s", aws.ToInt32(upd.MemorySize), aws.ToString(upd.RevisionId))
	}
	for _, stale := range []*string{created.RevisionId, got.Configuration.RevisionId} {
		_, err = c.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("life"), Timeout: aws.Int32(20), RevisionId: stale})
		if !isErr[*types.PreconditionFailedException](err) {
			t.Fatalf("stale RevisionId: %v, want PreconditionFailedException", err)
		}
	}

	v1, err := c.PublishVersion(ctx(t), &lambda.PublishVersionInput{FunctionName: aws.String("life")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(v1.Version) != "1" || aws.ToInt32(v1.MemorySize) != 512 {
		t.Fatalf("PublishVersion = %s memory %d", aws.ToString(v1.Version), aws.ToInt32(v1.MemorySize))
	}
	if _, err := c.UpdateFunctionCode(ctx(t), &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("life"),
		ZipFile: goFnZip, Publish: true}); err != nil {
		t.Fatal(err)
	}
	vers, err := c.ListVersionsByFunction(ctx(t), &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("life")})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vers.Versions {
		names = append(names, aws.ToString(v.Version))
	}
	if fmt.Sprint(names) != "[$LATEST 1]" {
		// Publishing unchanged code returns the existing version, as Lambda does.
		t.Fatalf("versions = %v, want [$LATEST 1]", names)
	}

	alias, err := c.CreateAlias(ctx(t), &lambda.CreateAliasInput{FunctionName: aws.String("life"),
		Name: aws.String("prod"), FunctionVersion: aws.String("1")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(alias.AliasArn) != "arn:aws:lambda:us-east-1:123456789012:function:life:prod" {
		t.Fatalf("alias ARN %s", aws.ToString(alias.AliasArn))
	}
	_, err = c.UpdateAlias(ctx(t), &lambda.UpdateAliasInput{FunctionName: aws.String("life"), Name: aws.String("prod"),
		RoutingConfig: &types.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{"1": 0.5}}})
	if !isErr[*types.InvalidParameterValueException](err) {
		t.Fatalf("an alias weighting its own version: %v, want InvalidParameterValueException", err)
	}
	aliases, err := c.ListAliases(ctx(t), &lambda.ListAliasesInput{FunctionName: aws.String("life")})
	if err != nil || len(aliases.Aliases) != 1 {
		t.Fatalf("ListAliases = %v, %v", aliases, err)
	}
	if _, err := c.GetAlias(ctx(t), &lambda.GetAliasInput{FunctionName: aws.String("life"), Name: aws.String("nope")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("GetAlias of a missing alias: %v", err)
	}
	if _, err := c.DeleteAlias(ctx(t), &lambda.DeleteAliasInput{FunctionName: aws.String("life"), Name: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}

	// ListFunctions pages with Marker/MaxItems.
	createGoFn(t, s, "life2")
	createGoFn(t, s, "life3")
	seen := map[string]bool{}
	p := lambda.NewListFunctionsPaginator(c, &lambda.ListFunctionsInput{MaxItems: aws.Int32(1)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, f := range page.Functions {
			seen[aws.ToString(f.FunctionName)] = true
		}
	}
	if len(seen) != 3 || pages < 3 {
		t.Fatalf("listed %v in %d pages", seen, pages)
	}

	// Delete one version, then the function.
	if _, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("life"), Qualifier: aws.String("1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("life"), Qualifier: aws.String("1")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("deleted version: %v", err)
	}
	if _, err := c.DeleteFunction(ctx(t), &lambda.DeleteFunctionInput{FunctionName: aws.String("life")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetFunction(ctx(t), &lambda.GetFunctionInput{FunctionName: aws.String("life")}); !isErr[*types.ResourceNotFoundException](err) {
		t.Fatalf("deleted function: %v", err)
	}
}

func TestCreateFunctionValidation(t *testing.T) {
	s := startShoal(t)
	base := func() *lambda.CreateFunctionInput {
		return &lambda.CreateFunctionInput{FunctionName: aws.String("v"), Runtime: types.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String(role), Code: &types.FunctionCode{ZipFile: goFnZip}}
	}
	cases := []struct {
		name   string
		mutate func(*lambda.CreateFunctionInput)
		check  func(error) bool
	}{
		{"memory too small", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(64) }, hasCode("ValidationException")},
		{"memory too large", func(in *lambda.CreateFunctionInput) { in.MemorySize = aws.Int32(20000) }, isErr[*types.InvalidParameterValueException]},
		{"timeout too long", func(in *lambda.CreateFunctionInput) { in.Timeout = aws.Int32(901) }, isErr[*types.InvalidParameterValueException]},
		{"unknown runtime", func(in *lambda.CreateFunctionInput) { in.Runtime = "cobol85" }, isErr[*types.InvalidParameterValueException]},
		{"bad zip", func(in *lambda.CreateFunctionInput) { in.Code.ZipFile = []byte("not a zip") }, isErr[*types.InvalidParameterValueException]},
		{"bad name", func(in *lambda.CreateFunctionInput) { in.FunctionName = aws.String("no spaces allowed") }, hasCode("ValidationException")},
		{"reserved env var", func(in *lambda.CreateFunctionInput) {
			in.Environment = &types.Environment{Variables: map[string]string{"AWS_REGION": "x"}}
		}, isErr[*types.InvalidParameterValueException]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mutate(in)
			_, err := s.client.CreateFunction(ctx(t), in)
			if !tc.check(err) {
				t.Fatalf("err = %v (%T)", err, errors.Unwrap(err))
			}
		})
	}
}

// isErr reports whether err carries the SDK's typed error E.
func isErr[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

// hasCode matches an error whose API error code is code (for codes the SDK has no
// type for, such as ValidationException).
func hasCode(code string) func(error) bool {
	return func(err error) bool { return errCode(err) == code }
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
