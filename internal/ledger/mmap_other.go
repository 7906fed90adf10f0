//go:build !unix

package ledger

import (
	"errors"
	"os"
)

// errNoMmap: the journal maps its segments into memory with mmap(2), which
// this system lacks. Only `shoal up` and `shoal agent` write a journal, and
// they run on Linux.
var errNoMmap = errors.New("the usage journal needs mmap(2), which this system lacks")

func allocate(*os.File, int64) error { return errNoMmap }

func mapSegment(*os.File, int64) ([]byte, error) { return nil, errNoMmap }

func unmapSegment([]byte) error { return nil }
