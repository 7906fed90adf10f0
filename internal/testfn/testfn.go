// Package testfn builds the functions that tests deploy: the aws-lambda-go
// test function (test/testdata/gofn) as a provided-runtime zip.
package testfn

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// GoZip builds the Go package at pkg (a path such as
// "../../test/testdata/gofn", relative to the test's package) for Linux
// without cgo, in dir, and returns it zipped as a deployment package whose
// one file is the executable "bootstrap".
func GoZip(dir, pkg string) ([]byte, error) {
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the test function %s: %v\n%s", pkg, err, out)
	}
	return zipFile(bin, "bootstrap")
}

// zipFile returns a zip that holds the file at path as name, executable.
func zipFile(path, name string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
