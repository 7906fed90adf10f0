package codecache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// OptDir returns the directory a function's layers make, as its environments see
// /opt: the layers whose CodeSha256s are given, unpacked in that order, a later
// layer's file replacing an earlier one's of the same path, as Lambda extracts
// them. Each layer is unpacked once per CodeSha256 like function code (so a
// package used as a function's code and as a layer is unpacked once); a single
// layer is its own directory, and several are merged once per ordered list, by
// hard links where the file system allows them. No layers is "".
func (c *Cache) OptDir(ctx context.Context, layers []string) (string, error) {
	if len(layers) == 0 {
		return "", nil
	}
	dirs := make([]string, len(layers))
	for i, sha := range layers {
		d, err := c.CodeDir(ctx, sha)
		if err != nil {
			return "", fmt.Errorf("layer %d: %w", i+1, err)
		}
		dirs[i] = d
	}
	if len(dirs) == 1 {
		return dirs[0], nil
	}
	sum := sha256.Sum256([]byte(strings.Join(layers, "\n")))
	return c.once(ctx, "opt-"+hex.EncodeToString(sum[:]), func(path string) error {
		for _, d := range dirs {
			if err := overlay(d, path); err != nil {
				return fmt.Errorf("code: merge layers: %w", err)
			}
		}
		return nil
	})
}

// overlay copies the tree src onto dst: directories are merged, files and links
// replace whatever dst had at their path.
func overlay(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if st, err := os.Lstat(target); err == nil && !st.IsDir() {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
			return os.MkdirAll(target, 0o755)
		}
		if err := os.RemoveAll(target); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			to, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(to, target)
		}
		if err := os.Link(p, target); err == nil {
			return nil
		}
		return copyFile(p, target) // another file system, or one without links
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
