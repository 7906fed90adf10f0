package env

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/internal/codecache"
	"github.com/shoal-dev/shoal/internal/envnet"
)

// Functions whose dependencies only their layers hold: the layers are unpacked
// and merged by the code cache (as the router and agents do) and mounted at /opt
// (isolated) or shown where they are (not isolated); runtimes find them where
// Lambda's do.

// packages is a code cache over zips held in memory.
type packages struct {
	zips  map[string][]byte
	cache *codecache.Cache
}

func newPackages(t *testing.T) *packages {
	p := &packages{zips: map[string][]byte{}}
	p.cache = codecache.New(t.TempDir(), func(_ context.Context, sha string) ([]byte, error) {
		if z, ok := p.zips[sha]; ok {
			return z, nil
		}
		return nil, errors.New("no such package")
	})
	return p
}

// add zips files (executable when their name is in exec) and returns the zip's
// CodeSha256.
func (p *packages) add(t *testing.T, files map[string]string, exec ...string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		hdr.SetMode(0o644)
		for _, x := range exec {
			if x == name {
				hdr.SetMode(0o755)
			}
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	sha := base64.StdEncoding.EncodeToString(sum[:])
	p.zips[sha] = buf.Bytes()
	return sha
}

// withLayers sets spec's code and layers from the cache.
func (p *packages) withLayers(t *testing.T, spec Spec, code string, layers ...string) Spec {
	t.Helper()
	dir, err := p.cache.CodeDir(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := p.cache.OptDir(context.Background(), layers)
	if err != nil {
		t.Fatal(err)
	}
	spec.CodeDir, spec.Layers, spec.OptDir = dir, layers, opt
	return spec
}

// bothWays runs f in an environment that is not isolated and, as root, in an
// isolated one.
func bothWays(t *testing.T, f func(t *testing.T, h *harness, isolate bool)) {
	t.Run("plain", func(t *testing.T) { f(t, newHarness(t), false) })
	t.Run("isolated", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("isolation needs root")
		}
		h := newHarness(t)
		nets, err := envnet.NewPools(envnet.Config{Ready: 1}, nil)
		if err != nil {
			t.Skipf("no network namespaces: %v", err)
		}
		t.Cleanup(func() { _ = nets.Close() })
		h.deps.Networks = nets
		f(t, h, true)
	})
}

const pyLayerCode = `
import os, subprocess, sys
import layermod
import sitemod

def handler(event, context):
    return {
        "layermod": layermod.VALUE,
        "layermod_file": layermod.__file__,
        "sitemod": sitemod.VALUE,
        "tool": subprocess.check_output(["layertool"]).decode().strip(),
        "ld": os.environ["LD_LIBRARY_PATH"].split(":")[-1],
    }
`

func TestPythonLayers(t *testing.T) {
	needTool(t, "python3")
	p := newPackages(t)
	code := p.add(t, map[string]string{"app.py": pyLayerCode})
	// Two layers: the second one's copy of layermod wins, sitemod lives in the
	// layer's site-packages, bin/ holds a tool.
	first := p.add(t, map[string]string{"python/layermod.py": "VALUE = 'first layer'\n", "bin/layertool": "#!/bin/sh\necho tool from a layer\n"}, "bin/layertool")
	second := p.add(t, map[string]string{"python/layermod.py": "VALUE = 'second layer'\n",
		"python/lib/python3.12/site-packages/sitemod.py": "VALUE = 'site-packages'\n"})
	bothWays(t, func(t *testing.T, h *harness, isolate bool) {
		spec := p.withLayers(t, pySpec("pylayers", "app.handler", ""), code, first, second)
		spec.Isolate = isolate
		env := h.startT(t, spec)
		r := invoke(t, env, `{}`, true)
		if r.FunctionError != "" {
			t.Fatalf("%s\n%s", r.Payload, r.LogTail)
		}
		var got map[string]string
		if err := json.Unmarshal(r.Payload, &got); err != nil {
			t.Fatal(err)
		}
		opt := spec.OptDir
		if isolate {
			opt = "/opt"
		}
		want := map[string]string{"layermod": "second layer", "layermod_file": opt + "/python/layermod.py",
			"sitemod": "site-packages", "tool": "tool from a layer", "ld": opt + "/lib"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %q, want %q", k, got[k], v)
			}
		}
	})
}

const nodeLayerCode = `
const layermod = require('layermod');
exports.handler = async () => ({ value: layermod.value, from: require.resolve('layermod') });
`

func TestNodeLayers(t *testing.T) {
	needTool(t, "node")
	p := newPackages(t)
	code := p.add(t, map[string]string{"index.js": nodeLayerCode})
	layer := p.add(t, map[string]string{"nodejs/node_modules/layermod/index.js": "module.exports = { value: 'from the layer' };\n"})
	bothWays(t, func(t *testing.T, h *harness, isolate bool) {
		spec := p.withLayers(t, nodeSpec("nodelayers", "index.handler", ""), code, layer)
		spec.Isolate = isolate
		env := h.startT(t, spec)
		r := invoke(t, env, `{}`, true)
		if r.FunctionError != "" {
			t.Fatalf("%s\n%s", r.Payload, r.LogTail)
		}
		var got struct{ Value, From string }
		if err := json.Unmarshal(r.Payload, &got); err != nil {
			t.Fatal(err)
		}
		opt := spec.OptDir
		if isolate {
			opt = "/opt"
		}
		if got.Value != "from the layer" || got.From != opt+"/nodejs/node_modules/layermod/index.js" {
			t.Errorf("layermod %+v, want it from %s", got, opt)
		}
	})
	// Without the layer, the same code cannot load.
	h := newHarness(t)
	spec := p.withLayers(t, nodeSpec("nolayer", "index.handler", ""), code)
	if _, err := Start(context.Background(), spec, h.deps); err == nil || !strings.Contains(err.Error(), "Cannot find module 'layermod'") {
		t.Errorf("without its layer: %v", err)
	}
}

// A provided function whose package has no bootstrap runs the one its layer
// brings (/opt/bootstrap).
func TestProvidedBootstrapFromLayer(t *testing.T) {
	bootstrap, err := os.ReadFile(filepath.Join(goFnDir, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	p := newPackages(t)
	code := p.add(t, map[string]string{"README": "the bootstrap comes from a layer\n"})
	layer := p.add(t, map[string]string{"bootstrap": string(bootstrap)}, "bootstrap")
	bothWays(t, func(t *testing.T, h *harness, isolate bool) {
		spec := p.withLayers(t, goSpec("custom"), code, layer)
		spec.Isolate = isolate
		env := h.startT(t, spec)
		r := invoke(t, env, `{"mode":"context"}`, false)
		if r.FunctionError != "" || !strings.Contains(string(r.Payload), `"_HANDLER":"bootstrap"`) {
			t.Errorf("%s", r.Payload)
		}
	})
	h := newHarness(t)
	spec := p.withLayers(t, goSpec("nobootstrap"), code)
	_, err = Start(context.Background(), spec, h.deps)
	var ie *InitError
	if !errors.As(err, &ie) || ie.ErrorType != "Runtime.InvalidEntrypoint" {
		t.Errorf("without a bootstrap anywhere: %v", err)
	}
}
