//go:build race

package main

// raceEnabled builds the kvserver binary of the interop tests with -race
// when the tests themselves run with it.
const raceEnabled = true
