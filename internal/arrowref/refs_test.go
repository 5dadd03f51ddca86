package arrowref

import (
	"sync"
	"testing"
)

func TestCount(t *testing.T) {
	var c Count
	n := 0
	c.Init(func() { n++ })
	c.Retain()
	c.Release()
	if n != 0 {
		t.Fatal("released with a reference left")
	}
	c.Release()
	c.Release() // past zero
	c.Retain()
	c.Release()
	if n != 1 {
		t.Fatalf("release ran %d times, want once", n)
	}
}

func TestCountConcurrent(t *testing.T) {
	var c Count
	var mu sync.Mutex
	n := 0
	c.Init(func() { mu.Lock(); n++; mu.Unlock() })
	var wg sync.WaitGroup
	for range 100 {
		c.Retain()
		wg.Add(1)
		go func() { defer wg.Done(); c.Release() }()
	}
	wg.Wait()
	c.Release()
	if n != 1 {
		t.Fatalf("release ran %d times", n)
	}
}
