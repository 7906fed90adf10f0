package runtimes

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestProberTellsBuildsApart: the build of a family changes when its
// interpreter changes, and only then.
func TestProberTellsBuildsApart(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	write := func(version string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(node, []byte("#!/bin/sh\necho "+version+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(node, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write("v20.0.0", base)
	var p Prober
	b1, err := p.Build(Node)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := p.Build(Node); b != b1 {
		t.Fatalf("the same interpreter gave builds %s and %s", b1, b)
	}
	write("v22.0.0", base.Add(time.Hour))
	b2, err := p.Build(Node)
	if err != nil {
		t.Fatal(err)
	}
	if b2 == b1 {
		t.Fatal("a new interpreter kept the build")
	}
	if b, _ := p.Build(Provided); b != "provided" {
		t.Fatalf("provided build %q", b)
	}
	if got := p.Builds()["node"]; got != b2 {
		t.Fatalf("Builds()[node] = %q, want %q", got, b2)
	}
	if VersionID("nodejs20.x", b1) == VersionID("nodejs20.x", b2) || VersionID("nodejs20.x", b1) == VersionID("nodejs22.x", b1) {
		t.Fatal("runtime version ids collide")
	}
	if len(BootstrapHash()) != 64 {
		t.Fatalf("bootstrap hash %q", BootstrapHash())
	}
}
