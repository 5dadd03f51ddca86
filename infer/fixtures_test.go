package infer

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// readFixtureCSV reads a fixture CSV of numbers ("nan" for missing) with a
// header line; bits is 32 for model inputs (float32 features) and 64 for
// the reference outputs.
func readFixtureCSV(t testing.TB, path string, bits int) (header []string, rows [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fields := strings.Split(line, ",")
		if header == nil {
			header = fields
			continue
		}
		row := make([]float64, len(fields))
		for i, s := range fields {
			v, err := strconv.ParseFloat(s, bits)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, s, err)
			}
			row[i] = v
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return header, rows
}
