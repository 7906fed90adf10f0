package registry

import (
	"context"
	"slices"
	"testing"

	"github.com/shoal-dev/shoal/internal/awserr"
)

func publishLayer(t *testing.T, r *Registry, name, content string) *LayerVersion {
	t.Helper()
	lv, err := r.PublishLayerVersion(context.Background(), PublishLayerInput{Name: name, ZipFile: testZip(t, content)})
	if err != nil {
		t.Fatal(err)
	}
	return lv
}

// Version numbers grow and are never reused, even once every version is gone.
func TestLayerVersionNumbers(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	for want := int64(1); want <= 2; want++ {
		if lv := publishLayer(t, r, "l", "x"); lv.Version != want || lv.LayerVersionArn != r.LayerVersionARN("l", want) {
			t.Fatalf("version %d: %+v", want, lv)
		}
	}
	for v := int64(1); v <= 2; v++ {
		if err := r.DeleteLayerVersion(ctx, "l", v); err != nil {
			t.Fatal(err)
		}
	}
	if vs, err := r.ListLayerVersions(ctx, "l"); err != nil || len(vs) != 0 {
		t.Fatalf("after deleting both: %v %v", vs, err)
	}
	if got := r.ListLayers(ctx); len(got) != 0 {
		t.Errorf("a layer without versions is listed: %+v", got)
	}
	if lv := publishLayer(t, r, "l", "x"); lv.Version != 3 {
		t.Errorf("republished as %d, want 3", lv.Version)
	}
	if _, err := r.GetLayerVersion(ctx, "l", 1); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("deleted version: %v", err)
	}
	if err := r.DeleteLayerVersion(ctx, "nosuch", 1); err != nil {
		t.Errorf("deleting a missing layer: %v", err)
	}
}

// A function keeps the content of its layer versions after they are deleted, and
// the code store keeps their zip until nothing uses it.
func TestLayerContentOutlivesItsVersion(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	lv := publishLayer(t, r, "lib", "layer content")
	cfg := Version{FunctionName: "f", Runtime: "python3.12", Handler: "app.handler", Layers: []Layer{{Arn: lv.LayerVersionArn}}}
	latest, _, err := r.CreateFunction(ctx, CreateFunctionInput{Config: cfg, ZipFile: testZip(t, "code"), Publish: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(latest.Layers) != 1 || latest.Layers[0].CodeSize != lv.CodeSize {
		t.Fatalf("layers %+v, want code size %d", latest.Layers, lv.CodeSize)
	}
	if err := r.DeleteLayerVersion(ctx, "lib", 1); err != nil {
		t.Fatal(err)
	}
	v, err := r.ResolveVersion(ctx, "f", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.LayerCode(), []string{lv.CodeSha256}) {
		t.Fatalf("layer code %v, want %s", v.LayerCode(), lv.CodeSha256)
	}
	if _, err := r.Code(ctx, lv.CodeSha256); err != nil {
		t.Fatalf("the layer's zip is gone while a function uses it: %v", err)
	}
	// An unrelated update keeps the deleted layer version.
	if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Description = "d"; return nil }); err != nil {
		t.Fatal(err)
	}
	// $LATEST drops it; version 1 still has it.
	if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Layers = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Code(ctx, lv.CodeSha256); err != nil {
		t.Fatalf("the layer's zip is gone while version 1 uses it: %v", err)
	}
	if err := r.DeleteVersion(ctx, "f", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Code(ctx, lv.CodeSha256); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("the zip of a layer nothing uses is kept: %v", err)
	}
}

func TestFunctionLayersRefused(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	publishLayer(t, r, "big", "0123456789")
	cases := []struct {
		name string
		arn  string
		want string
	}{
		{"missing layer", r.LayerVersionARN("nosuch", 1), "Layer version " + r.LayerVersionARN("nosuch", 1) + " does not exist."},
		{"missing version", r.LayerVersionARN("big", 9), "Layer version " + r.LayerVersionARN("big", 9) + " does not exist."},
		{"other region", "arn:aws:lambda:eu-west-1:123456789012:layer:big:1", "Layers are not in the same region as the function. Layers are expected to be in region us-east-1."},
		{"other account", "arn:aws:lambda:us-east-1:210987654321:layer:big:1", "Layer version arn:aws:lambda:us-east-1:210987654321:layer:big:1 does not exist."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Version{FunctionName: "f", Runtime: "python3.12", Layers: []Layer{{Arn: c.arn}}}
			_, _, err := r.CreateFunction(ctx, CreateFunctionInput{Config: cfg, ZipFile: testZip(t, "code")})
			if e := awserr.As(err); e == nil || e.Code != awserr.CodeInvalidParameterValue || e.Message != c.want {
				t.Errorf("got %v, want InvalidParameterValueException %q", err, c.want)
			}
		})
	}
	if _, err := r.GetFunction(ctx, "f"); err == nil {
		t.Error("a refused function was stored")
	}
	t.Run("combined size", func(t *testing.T) {
		small := newRegistryWith(t, Config{MaxUnzippedCodeBytes: 20})
		lv := publishLayer(t, small, "big", "0123456789") // 10 bytes unzipped
		cfg := Version{FunctionName: "f", Runtime: "python3.12", Layers: []Layer{{Arn: lv.LayerVersionArn}}}
		if _, _, err := small.CreateFunction(ctx, CreateFunctionInput{Config: cfg, ZipFile: testZip(t, "0123456789")}); err != nil {
			t.Fatalf("20 bytes in all: %v", err)
		}
		_, _, err := small.UpdateFunctionCode(ctx, "f", UpdateCodeInput{ZipFile: testZip(t, "0123456789a")})
		want := "Function code combined with layers exceeds the maximum allowed size of 20 bytes. The actual size is 21 bytes."
		if e := awserr.As(err); e == nil || e.Code != awserr.CodeInvalidParameterValue || e.Message != want {
			t.Errorf("21 bytes in all: %v", err)
		}
	})
}

func newRegistryWith(t *testing.T, cfg Config) *Registry {
	b := startBus(t, t.TempDir())
	r, err := Open(context.Background(), b.JetStream(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); b.Close() })
	return r
}

func TestLayerPolicy(t *testing.T) {
	r := newRegistry(t)
	ctx := context.Background()
	publishLayer(t, r, "l", "x")
	if _, err := r.GetLayerVersionPolicy(ctx, "l", 1); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Fatalf("no policy yet: %v", err)
	}
	st, rev1, err := r.AddLayerVersionPermission(ctx, "l", 1, LayerStatement{Sid: "s1", Principal: []byte(`"*"`), Action: "lambda:GetLayerVersion"}, "")
	if err != nil || st.Resource != r.LayerVersionARN("l", 1) || st.Effect != "Allow" {
		t.Fatalf("add: %+v %v", st, err)
	}
	if _, _, err := r.AddLayerVersionPermission(ctx, "l", 1, LayerStatement{Sid: "s1", Principal: []byte(`"*"`)}, ""); !awserr.Is(err, awserr.CodeResourceConflict) {
		t.Errorf("duplicate sid: %v", err)
	}
	if _, _, err := r.AddLayerVersionPermission(ctx, "l", 1, LayerStatement{Sid: "s2", Principal: []byte(`"*"`)}, "wrong"); !awserr.Is(err, awserr.CodePreconditionFailed) {
		t.Errorf("wrong revision: %v", err)
	}
	if _, _, err := r.AddLayerVersionPermission(ctx, "l", 2, LayerStatement{Sid: "s2", Principal: []byte(`"*"`)}, ""); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("missing version: %v", err)
	}
	_, rev2, err := r.AddLayerVersionPermission(ctx, "l", 1, LayerStatement{Sid: "s2", Principal: []byte(`"*"`)}, rev1)
	if err != nil || rev2 == rev1 {
		t.Fatalf("add s2: %v (revisions %s, %s)", err, rev1, rev2)
	}
	if err := r.RemoveLayerVersionPermission(ctx, "l", 1, "nosuch", ""); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("remove missing sid: %v", err)
	}
	if err := r.RemoveLayerVersionPermission(ctx, "l", 1, "s2", rev2); err != nil {
		t.Fatal(err)
	}
	p, err := r.GetLayerVersionPolicy(ctx, "l", 1)
	if err != nil || len(p.Statements) != 1 || p.Statements[0].Sid != "s1" || p.RevisionId == rev2 {
		t.Errorf("after removing s2: %+v %v", p, err)
	}
	if err := r.RemoveLayerVersionPermission(ctx, "l", 1, "s1", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetLayerVersionPolicy(ctx, "l", 1); !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Errorf("policy without statements: %v", err)
	}
}

// Layers survive a restart, as functions do.
func TestLayersPersist(t *testing.T) {
	dir := t.TempDir()
	b := startBus(t, dir)
	r := openRegistry(t, b)
	lv := publishLayer(t, r, "l", "x")
	r.Close()
	b.Close()
	b = startBus(t, dir)
	r = openRegistry(t, b)
	defer func() { r.Close(); b.Close() }()
	got, err := r.GetLayerVersion(context.Background(), "l", 1)
	if err != nil || got.CodeSha256 != lv.CodeSha256 {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if ls := r.ListLayers(context.Background()); len(ls) != 1 || ls[0].Name != "l" {
		t.Errorf("listed after restart: %+v", ls)
	}
}
