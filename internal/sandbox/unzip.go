package sandbox

import "errors"

// Lambda's deployment package limits.
const (
	// DefaultMaxUnzippedBytes is Lambda's limit on a function's unzipped code (250 MB).
	DefaultMaxUnzippedBytes = 262144000
	// DefaultMaxFiles bounds the number of entries in a package.
	DefaultMaxFiles = 100000
)

// ErrInvalidZip is wrapped by Unzip errors for archives that are malformed or unsafe
// (InvalidZipFileException).
var ErrInvalidZip = errors.New("invalid zip file")

// ErrTooLarge is wrapped by Unzip errors for archives over the limits
// (RequestTooLargeException-like).
var ErrTooLarge = errors.New("unzipped size exceeds limit")

// UnzipLimits bound what Unzip writes; zero fields take the defaults above.
type UnzipLimits struct {
	MaxUnzippedBytes int64
	MaxFiles         int
}

// Unzip unpacks zipData into dir.
func Unzip(zipData []byte, dir string, lim UnzipLimits) error {
	return errors.New("unzip: not implemented yet")
}
