//go:build !linux

package envnet

import "net/netip"

func supported() error { return ErrUnsupported }

func inNamespace(int, func() error) error { return ErrUnsupported }

func prepare(*Config) (*Net, error) { return nil, ErrUnsupported }

func (n *Net) teardown() error { return nil }

func shutdown(uintptr) error { return nil }

// Setup is Linux only.
func Setup(netip.Prefix) error { return ErrUnsupported }

// DenyTo is Linux only.
func DenyTo([]netip.Prefix) error { return ErrUnsupported }
