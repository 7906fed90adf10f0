//go:build !linux

package cli

import "github.com/spf13/cobra"

// newUpCmd is `shoal up` on a system other than Linux (up_linux.go).
func newUpCmd() *cobra.Command {
	return linuxOnly("up", "Start shoal on this machine with its embedded defaults")
}

// newAgentCmd is `shoal agent` on a system other than Linux (agent_linux.go).
func newAgentCmd() *cobra.Command {
	return linuxOnly("agent", "Run an instance agent: host execution environments for the control plane")
}

// newHostCmd is `shoal host` on a system other than Linux (host_linux.go).
func newHostCmd() *cobra.Command {
	return linuxOnly("host", "Offer this machine's capacity to a shoal cluster")
}
