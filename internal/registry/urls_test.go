package registry

import (
	"context"
	"regexp"
	"testing"

	"github.com/shoal-dev/shoal/internal/awserr"
)

func TestFunctionURLs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := startBus(t, dir)
	r := openRegistry(t, b)
	create(t, r, "fn")
	if _, err := r.PublishVersion(ctx, "fn", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "fn", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	none, iam, stream := URLAuthNone, URLAuthIAM, URLInvokeStream

	u, err := r.CreateFunctionURL(ctx, "fn", "", FunctionURLChange{AuthType: &none})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z0-9]{32}$`).MatchString(u.ID) || u.Mode() != URLInvokeBuffered || u.InvokeMode != "" {
		t.Errorf("created %+v", u)
	}
	_, err = r.CreateFunctionURL(ctx, "fn", "", FunctionURLChange{AuthType: &none})
	wantCode(t, err, awserr.CodeResourceConflict)
	_, err = r.CreateFunctionURL(ctx, "fn", "nope", FunctionURLChange{AuthType: &none})
	wantCode(t, err, awserr.CodeResourceNotFound)
	_, err = r.CreateFunctionURL(ctx, "nofn", "", FunctionURLChange{AuthType: &none})
	wantCode(t, err, awserr.CodeResourceNotFound)
	a, err := r.CreateFunctionURL(ctx, "fn", "live", FunctionURLChange{AuthType: &iam, InvokeMode: &stream})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == u.ID {
		t.Fatal("two URLs share an id")
	}
	up, err := r.UpdateFunctionURL(ctx, "fn", "", FunctionURLChange{AuthType: &iam})
	if err != nil || up.AuthType != URLAuthIAM || up.ID != u.ID {
		t.Fatalf("update: %+v %v", up, err)
	}
	list, err := r.ListFunctionURLs(ctx, "fn")
	if err != nil || len(list) != 2 || list[0].Qualifier != "" || list[1].Qualifier != "live" {
		t.Fatalf("list: %+v %v", list, err)
	}

	// The index survives a restart.
	r.Close()
	b.Close()
	b = startBus(t, dir)
	defer b.Close()
	r = openRegistry(t, b)
	defer r.Close()
	got, _, ok := r.ResolveFunctionURL(a.ID)
	if !ok || got.Function != "fn" || got.Qualifier != "live" || got.Mode() != URLInvokeStream {
		t.Fatalf("resolve %s after restart: %+v %v", a.ID, got, ok)
	}

	// Deleting the function's URL leaves the alias's; deleting the alias removes its URL.
	if err := r.DeleteFunctionURL(ctx, "fn", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.ResolveFunctionURL(u.ID); ok {
		t.Error("a deleted URL still resolves")
	}
	if _, err := r.GetFunctionURL(ctx, "fn", "live"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteAlias(ctx, "fn", "live"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.ResolveFunctionURL(a.ID); ok {
		t.Error("the URL of a deleted alias still resolves")
	}
	wantCode(t, r.DeleteFunctionURL(ctx, "fn", ""), awserr.CodeResourceNotFound)
}
