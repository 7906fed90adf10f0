//go:build !race

package runtimeapi

const raceEnabled = false
