//go:build race

package rawio

// raceEnabled: under the race detector, socket I/O goes through package
// syscall, whose Read and Write tell the detector that what one goroutine
// wrote before a write is visible to the goroutine that reads it.
const raceEnabled = true
