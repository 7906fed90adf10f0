//go:build !windows

package cli

import "os"

// enableVT reports that the terminal draws ANSI sequences, as every Unix
// terminal does.
func enableVT(*os.File) bool { return true }
