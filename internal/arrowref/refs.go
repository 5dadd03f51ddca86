package arrowref

import "sync/atomic"

// Count is embedded by a reader: Init with the function that frees the
// reader, then Retain and Release are the reader's.
type Count struct {
	n       atomic.Int64
	done    atomic.Bool
	release func()
}

// Init sets the count to one (the creator's reference); release runs once,
// on the last Release.
func (c *Count) Init(release func()) {
	c.release = release
	c.n.Store(1)
}

// Retain adds a reference. It may be called from any goroutine.
func (c *Count) Retain() { c.n.Add(1) }

// Release drops a reference; the last one runs the release function.
// Releases past zero do nothing.
func (c *Count) Release() {
	if c.n.Add(-1) != 0 {
		return
	}
	if c.done.CompareAndSwap(false, true) && c.release != nil {
		c.release()
	}
}
