package cli

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// readCode returns the deployment package at path: a .zip file as it is, or a
// directory zipped with its files' modes kept (a bootstrap stays executable).
// On a system whose files have no executable bits (Windows) every file is
// packaged executable, as AWS's build-lambda-zip does, so that a bootstrap
// built there runs.
func readCode(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	if !info.IsDir() {
		return os.ReadFile(path)
	}
	return zipDir(path)
}

func zipDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".git") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil // links and devices are not packaged
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = name
		hdr.Method = zip.Deflate
		hdr.SetMode(packagedMode(info.Mode(), hostExecBits))
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("code: zip %s: %w", dir, err)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hostExecBits says whether this system's files carry Unix executable bits.
const hostExecBits = runtime.GOOS != "windows"

// packagedMode is the mode a file of mode m has in a deployment package:
// its own where the system has executable bits, else 0755.
func packagedMode(m fs.FileMode, execBits bool) fs.FileMode {
	if !execBits {
		return 0o755
	}
	return m
}
