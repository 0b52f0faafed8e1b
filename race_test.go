//go:build race

package durable_test

// raceEnabled: the tests run under the race detector.
const raceEnabled = true
