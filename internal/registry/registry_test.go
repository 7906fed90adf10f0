package registry

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/internal/awserr"
	"github.com/shoal-dev/shoal/internal/bus"
)

func testZip(t testing.TB, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func startBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	b, err := bus.Start(context.Background(), bus.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openRegistry(t *testing.T, b *bus.Bus) *Registry {
	t.Helper()
	r, err := Open(context.Background(), b.JetStream(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newRegistry(t *testing.T) *Registry {
	b := startBus(t, t.TempDir())
	r := openRegistry(t, b)
	t.Cleanup(func() { r.Close(); b.Close() })
	return r
}

func create(t *testing.T, r *Registry, name string) *Version {
	t.Helper()
	v, _, err := r.CreateFunction(context.Background(), CreateFunctionInput{
		Config:  Version{FunctionName: name, Runtime: "provided.al2023", Handler: "bootstrap", Role: "arn:aws:iam::123456789012:role/r"},
		ZipFile: testZip(t, name),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if !awserr.Is(err, code) {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := startBus(t, dir)
	r := openRegistry(t, b)
	create(t, r, "fn1")
	v1, err := r.PublishVersion(ctx, "fn1", "", "first", "")
	if err != nil {
		t.Fatal(err)
	}
	latest, err := r.ResolveVersion(ctx, "fn1", "") // publishing renewed its RevisionId
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "fn1", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	limits := ConcurrencyLimits{Account: 1000, MinUnreserved: 100}
	if _, err := r.PutFunctionConcurrency(ctx, "fn1", 10, limits); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutProvisionedConcurrency(ctx, "fn1", "live", 2, limits); err != nil {
		t.Fatal(err)
	}
	if err := r.SetProvisionedStatus(ctx, "fn1", "live", 2, 2, ProvisionedReady, ""); err != nil {
		t.Fatal(err)
	}
	r.Close()
	b.Close()

	b = startBus(t, dir)
	defer b.Close()
	r = openRegistry(t, b)
	defer r.Close()
	got, err := r.ResolveVersion(ctx, "fn1", "live")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "1" || got.RevisionId != v1.RevisionId || got.Description != "first" {
		t.Errorf("alias after restart resolves to %+v", got)
	}
	l, err := r.ResolveVersion(ctx, "fn1", "")
	if err != nil || l.RevisionId != latest.RevisionId {
		t.Fatalf("latest after restart: %v %v", l, err)
	}
	code, err := r.Code(ctx, l.CodeSha256)
	if err != nil || !bytes.Equal(code, testZip(t, "fn1")) {
		t.Fatalf("code after restart: %d bytes, %v", len(code), err)
	}
	res, err := r.GetFunctionConcurrency(ctx, "fn1")
	if err != nil || res == nil || *res != 10 {
		t.Fatalf("reserved after restart: %v %v", res, err)
	}
	pcs, err := r.ListProvisionedConcurrency(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ProvisionedConcurrencyConfig{FunctionName: "fn1", Qualifier: "live", Version: "1", Requested: 2, Allocated: 2, Available: 2, Status: ProvisionedReady}
	if len(pcs) != 1 {
		t.Fatalf("provisioned after restart: %+v", pcs)
	}
	pcs[0].LastModified = ""
	if !reflect.DeepEqual(pcs[0], want) {
		t.Errorf("provisioned after restart = %+v, want %+v", pcs[0], want)
	}
}

func TestPublishUnchangedReturnsLastVersion(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "f")
	v1, err := r.PublishVersion(ctx, "f", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.PublishVersion(ctx, "f", "", "", "")
	if err != nil || again.Version != "1" {
		t.Fatalf("republish = %v, %v; want version 1", again, err)
	}
	if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Description = "x"; return nil }); err != nil {
		t.Fatal(err)
	}
	v2, err := r.PublishVersion(ctx, "f", "", "", "")
	if err != nil || v2.Version != "2" {
		t.Fatalf("publish after change = %v, %v; want 2", v2, err)
	}
	_, err = r.PublishVersion(ctx, "f", "wrong", "", "")
	wantCode(t, err, awserr.CodeInvalidParameterValue)
	_, err = r.PublishVersion(ctx, "f", "", "", v1.RevisionId)
	wantCode(t, err, awserr.CodePreconditionFailed)
}

// Concurrent updates with the same RevisionId: exactly one wins, the others get
// PreconditionFailedException; updates without RevisionId all apply.
func TestConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	latest := create(t, r, "f")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.UpdateFunctionConfiguration(ctx, "f", latest.RevisionId, func(v *Version) error {
				v.Description = fmt.Sprint(i)
				return nil
			})
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			wantCode(t, err, awserr.CodePreconditionFailed)
		}
	}
	if ok != 1 {
		t.Fatalf("%d updates with the same RevisionId succeeded, want 1", ok)
	}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error {
				v.Timeout++
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v, _ := r.ResolveVersion(ctx, "f", "")
	if v.Timeout != 3+n {
		t.Fatalf("timeout after %d increments = %d, want %d", n, v.Timeout, 3+n)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRegistry(t)
	create(t, r, "before")
	ch, err := r.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func() Change {
		t.Helper()
		select {
		case c := <-ch:
			return c
		case <-time.After(10 * time.Second):
			t.Fatal("no change delivered")
			return Change{}
		}
	}
	if c := next(); c != (Change{Function: "before"}) {
		t.Fatalf("initial change = %+v", c)
	}
	create(t, r, "after")
	if c := next(); c != (Change{Function: "after"}) {
		t.Fatalf("change = %+v", c)
	}
	if err := r.DeleteFunction(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != (Change{Function: "after", Deleted: true}) {
		t.Fatalf("change = %+v", c)
	}
	cancel()
	for range ch {
	}
}

func TestResolveAndDelete(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "f")
	if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "a", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, q, want, code string
	}{
		{"latest", "", "$LATEST", ""},
		{"explicit latest", "$LATEST", "$LATEST", ""},
		{"number", "1", "1", ""},
		{"alias", "a", "1", ""},
		{"missing version", "7", "", awserr.CodeResourceNotFound},
		{"missing alias", "b", "", awserr.CodeResourceNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := r.ResolveVersion(ctx, "f", tc.q)
			if tc.code != "" {
				wantCode(t, err, tc.code)
				return
			}
			if err != nil || v.Version != tc.want {
				t.Fatalf("got %v, %v; want %s", v, err, tc.want)
			}
		})
	}
	wantCode(t, r.DeleteVersion(ctx, "f", "1"), awserr.CodeResourceConflict)
	if err := r.DeleteAlias(ctx, "f", "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteVersion(ctx, "f", "1"); err != nil {
		t.Fatal(err)
	}
	latest, _ := r.ResolveVersion(ctx, "f", "")
	if err := r.DeleteFunction(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	_, err := r.ResolveVersion(ctx, "f", "")
	wantCode(t, err, awserr.CodeResourceNotFound)
	_, err = r.Code(ctx, latest.CodeSha256)
	if !awserr.Is(err, awserr.CodeResourceNotFound) {
		t.Fatalf("code of a deleted function still stored: %v", err)
	}
	wantCode(t, r.DeleteFunction(ctx, "f"), awserr.CodeResourceNotFound)
	if errors.Is(err, context.Canceled) {
		t.Fatal("unexpected")
	}
}

func BenchmarkResolveVersion(b *testing.B) {
	bs, err := bus.Start(context.Background(), bus.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	r, err := Open(context.Background(), bs.JetStream(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if _, _, err := r.CreateFunction(ctx, CreateFunctionInput{Config: Version{FunctionName: "f", Runtime: "provided.al2023"}, ZipFile: testZip(b, "x")}); err != nil {
		b.Fatal(err)
	}
	if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ResolveVersion(ctx, "f", "live"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestProvisionedRules(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "f")
	if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
		t.Fatal(err)
	}
	limits := ConcurrencyLimits{Account: 1000, MinUnreserved: 100}
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "latest", FunctionVersion: Latest}); err != nil {
		t.Fatal(err)
	}
	_, err := r.PutProvisionedConcurrency(ctx, "f", "latest", 1, limits)
	wantCode(t, err, awserr.CodeInvalidParameterValue)
	if _, err := r.CreateAlias(ctx, "f", Alias{Name: "live", FunctionVersion: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PutProvisionedConcurrency(ctx, "f", "live", 2, limits); err != nil {
		t.Fatal(err)
	}
	_, err = r.UpdateAlias(ctx, "f", "live", "", func(a *Alias) error { a.FunctionVersion = Latest; return nil })
	wantCode(t, err, awserr.CodeInvalidParameterValue)
	// Moving a provisioned alias resets its status to IN_PROGRESS.
	if err := r.SetProvisionedStatus(ctx, "f", "live", 2, 2, ProvisionedReady, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error { v.Description = "v2"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishVersion(ctx, "f", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.UpdateAlias(ctx, "f", "live", "", func(a *Alias) error { a.FunctionVersion = "2"; return nil }); err != nil {
		t.Fatal(err)
	}
	c, err := r.GetProvisionedConcurrency(ctx, "f", "live")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != ProvisionedInProgress || c.Version != "2" {
		t.Errorf("after moving the alias: %+v", c)
	}
	wantCode(t, r.SetProvisionedStatus(ctx, "f", "nope", 1, 1, ProvisionedReady, ""), awserr.CodeProvisionedConcurrencyNotFound)
	wantCode(t, r.SetProvisionedStatus(ctx, "f", "live", 1, 1, "DONE", ""), awserr.CodeInvalidParameterValue)
}

// Racing publishers never share a version number, and every change is published.
func TestConcurrentPublish(t *testing.T) {
	ctx := context.Background()
	r := newRegistry(t)
	create(t, r, "f")
	const n = 6
	var wg sync.WaitGroup
	versions := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.UpdateFunctionConfiguration(ctx, "f", "", func(v *Version) error {
				v.Description = fmt.Sprint("change ", i)
				return nil
			}); err != nil {
				t.Error(err)
				return
			}
			v, err := r.PublishVersion(ctx, "f", "", "", "")
			if err != nil {
				t.Error(err)
				return
			}
			versions[i] = v.Version
		}()
	}
	wg.Wait()
	all, err := r.ListVersions(ctx, "f")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range all[1:] {
		if seen[v.Version] {
			t.Fatalf("version %s twice", v.Version)
		}
		seen[v.Version] = true
	}
	for _, v := range versions {
		if !seen[v] {
			t.Errorf("published version %q is not listed", v)
		}
	}
	if len(all)-1 > n {
		t.Errorf("%d versions from %d publishes", len(all)-1, n)
	}
}
