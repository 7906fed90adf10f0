package cli

import (
	"os"

	"golang.org/x/sys/windows"
)

// enableVT turns on the console's handling of ANSI sequences, which shoal
// top's live view draws with; a console that cannot (before Windows 10)
// reports false and gets one frame after another instead.
func enableVT(f *os.File) bool {
	h := windows.Handle(f.Fd())
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return false
	}
	return windows.SetConsoleMode(h, mode|windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING) == nil
}
