// Package arrowref is the one reference count of the project's Arrow
// readers: Retain and Release done right once, as arrow-go's own readers do
// them (a count that starts at one, a release function run exactly once
// when it reaches zero, extra releases ignored).
//
// It imports the standard library only; anything may import it.
package arrowref
