//go:build !unix

package benchmarks

import "time"

// processCPU is not measured on this platform; the cpu-s/op metric reads 0.
func processCPU() time.Duration { return 0 }
