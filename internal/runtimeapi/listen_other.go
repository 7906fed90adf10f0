//go:build !linux

package runtimeapi

import "net"

// Listen opens the Runtime API's socket.
func Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
