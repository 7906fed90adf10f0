package sandbox

import (
	"errors"
	"os"
)

// isProcessDone reports whether err says the process already exited.
func isProcessDone(err error) bool {
	return errors.Is(err, os.ErrProcessDone)
}
