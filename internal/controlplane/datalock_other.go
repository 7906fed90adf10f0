//go:build !unix

package controlplane

import (
	"errors"
	"os"
)

func flock(*os.File) error   { return errors.New("shoal up needs Linux") }
func funlock(*os.File) error { return nil }

func lockBusy(error) bool { return false }
