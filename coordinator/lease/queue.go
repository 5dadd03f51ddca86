package lease

import (
	"container/heap"
	"time"
)

// deque is a ring-buffer double-ended queue: O(1) amortised at both ends.
type deque[T any] struct {
	buf  []T
	head int
	n    int
}

func (d *deque[T]) Len() int { return d.n }

func (d *deque[T]) grow() {
	if d.n < len(d.buf) {
		return
	}
	nb := make([]T, max(16, 2*len(d.buf)))
	for i := 0; i < d.n; i++ {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque[T]) PushBack(v T) {
	d.grow()
	d.buf[(d.head+d.n)%len(d.buf)] = v
	d.n++
}

func (d *deque[T]) PushFront(v T) {
	d.grow()
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = v
	d.n++
}

func (d *deque[T]) Front() T { return d.buf[d.head] }

func (d *deque[T]) PopFront() T {
	var zero T
	v := d.buf[d.head]
	d.buf[d.head] = zero
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	if d.n == 0 {
		d.head = 0
		if len(d.buf) > 1024 {
			d.buf = nil // let a drained big queue go
		}
	}
	return v
}

// workerHeap orders workers by deadline (then ID, for determinism).
type workerHeap []*worker

func (h workerHeap) Len() int { return len(h) }
func (h workerHeap) Less(i, j int) bool {
	if !h[i].deadline.Equal(h[j].deadline) {
		return h[i].deadline.Before(h[j].deadline)
	}
	return h[i].id < h[j].id
}
func (h workerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *workerHeap) Push(x any) {
	w := x.(*worker)
	w.heapIdx = len(*h)
	*h = append(*h, w)
}
func (h *workerHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.heapIdx = -1
	return w
}

// int64Heap is a min-heap; negate values for a max-heap.
type int64Heap []int64

func (h int64Heap) Len() int           { return len(h) }
func (h int64Heap) Less(i, j int) bool { return h[i] < h[j] }
func (h int64Heap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *int64Heap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *int64Heap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// median tracks the running median of durations: O(log n) per Add, O(1)
// per Median (two heaps).
type median struct {
	lo int64Heap // max-heap, negated
	hi int64Heap // min-heap
}

func (m *median) Add(d time.Duration) {
	v := int64(d)
	if m.lo.Len() == 0 || v <= -m.lo[0] {
		heap.Push(&m.lo, -v)
	} else {
		heap.Push(&m.hi, v)
	}
	if m.lo.Len() > m.hi.Len()+1 {
		heap.Push(&m.hi, -heap.Pop(&m.lo).(int64))
	} else if m.hi.Len() > m.lo.Len() {
		heap.Push(&m.lo, -heap.Pop(&m.hi).(int64))
	}
}

func (m *median) Len() int { return m.lo.Len() + m.hi.Len() }

func (m *median) Median() time.Duration {
	if m.lo.Len() == 0 {
		return 0
	}
	if m.lo.Len() > m.hi.Len() {
		return time.Duration(-m.lo[0])
	}
	return time.Duration((-m.lo[0] + m.hi[0]) / 2)
}

// values returns every duration (any order), for snapshots.
func (m *median) values() []int64 {
	out := make([]int64, 0, m.Len())
	for _, v := range m.lo {
		out = append(out, -v)
	}
	return append(out, m.hi...)
}
