//go:build !linux

package scratch

func supported() error { return ErrUnsupported }

func create(string, int) (*Volume, error) { return nil, ErrUnsupported }

func (v *Volume) teardown() error { return nil }

// Clean is Linux only.
func Clean(string) {}
