package datagen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"

	_ "github.com/duckdb/duckdb-go/v2" // registers the "duckdb" database/sql driver
)

// Defaults applied by Generate to zero-valued Options fields.
const (
	DefaultRows         int64  = 1_000_000
	DefaultFiles        int    = 8
	DefaultRowGroupRows int64  = 122_880
	DefaultCustomers    int64  = 10_000
	DefaultSeed         uint64 = 42
	DefaultFormat              = FormatParquet
)

// Supported values of Options.Format.
const (
	FormatParquet = "parquet"
	FormatCSV     = "csv"
)

// vectorSize is DuckDB's vector size; the Parquet writer closes a row group
// at the first vector boundary at or after ROW_GROUP_SIZE rows.
const vectorSize = 2048

// ErrInvalidOptions is wrapped by every error Generate returns for Options
// that fail validation.
var ErrInvalidOptions = errors.New("datagen: invalid options")

// Options configures Generate. Zero values select the defaults.
type Options struct {
	// Dir is the output directory. It and its events/ and customers/
	// subdirectories are created if missing; dataset files already in them
	// are replaced, and stale part files of an earlier run removed.
	Dir string
	// Rows is the number of events rows (default 1_000_000). Any count
	// works with bounded memory: every file is streamed to disk by its own
	// COPY, so memory depends on Threads and RowGroupRows, not on Rows.
	Rows int64
	// Files is the number of events files (default 8, or Rows if that is
	// smaller). Rows are split as evenly as possible with event_id
	// contiguous across files.
	Files int
	// RowGroupRows is the Parquet row group size (default 122_880). DuckDB
	// closes row groups on whole vectors of 2048 rows, so the effective size
	// is RowGroupRows rounded up to a multiple of 2048 (see RowGroups).
	RowGroupRows int64
	// Customers is the number of rows of the customers dimension
	// (default 10_000, at most math.MaxInt32).
	Customers int64
	// Seed selects the dataset (default 42). Seed 0 means the default.
	Seed uint64
	// Format is the events file format: "parquet" (default) or "csv". The
	// customers table is always written as Parquet, and also as CSV when
	// Format is "csv".
	Format string
	// Threads is the number of DuckDB threads (0 = runtime.NumCPU()). It
	// changes speed only, never the bytes written.
	Threads int
}

// Result describes a completed Generate call.
type Result struct {
	// Files lists every file written: the events files in event_id order,
	// then the customers file(s).
	Files []string
	// Rows is the number of events rows written.
	Rows int64
	// Bytes is the total size of Files on disk.
	Bytes int64
}

// RowGroups returns the number of Parquet row groups DuckDB writes for a file
// of rows rows with Options.RowGroupRows set to rowGroupRows.
func RowGroups(rows, rowGroupRows int64) int64 {
	if rows <= 0 {
		return 0
	}
	if rowGroupRows <= 0 {
		rowGroupRows = DefaultRowGroupRows
	}
	size := (rowGroupRows + vectorSize - 1) / vectorSize * vectorSize
	return (rows + size - 1) / size
}

// withDefaults returns o with zero fields replaced by defaults.
func (o Options) withDefaults() Options {
	if o.Rows == 0 {
		o.Rows = DefaultRows
	}
	if o.Files == 0 {
		o.Files = DefaultFiles
		if o.Rows > 0 && o.Rows < int64(o.Files) {
			o.Files = int(o.Rows)
		}
	}
	if o.RowGroupRows == 0 {
		o.RowGroupRows = DefaultRowGroupRows
	}
	if o.Customers == 0 {
		o.Customers = DefaultCustomers
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Format == "" {
		o.Format = DefaultFormat
	}
	if o.Threads == 0 {
		o.Threads = runtime.NumCPU()
	}
	return o
}

// validate checks o after defaults were applied.
func (o Options) validate() error {
	switch {
	case o.Dir == "":
		return fmt.Errorf("%w: dir is empty", ErrInvalidOptions)
	case o.Rows < 0:
		return fmt.Errorf("%w: rows %d is negative", ErrInvalidOptions, o.Rows)
	case o.Files < 0:
		return fmt.Errorf("%w: files %d is negative", ErrInvalidOptions, o.Files)
	case int64(o.Files) > o.Rows:
		return fmt.Errorf("%w: files %d exceeds rows %d (every file needs a row)", ErrInvalidOptions, o.Files, o.Rows)
	case o.RowGroupRows < 0:
		return fmt.Errorf("%w: row group rows %d is negative", ErrInvalidOptions, o.RowGroupRows)
	case o.Customers < 0:
		return fmt.Errorf("%w: customers %d is negative", ErrInvalidOptions, o.Customers)
	case o.Customers > math.MaxInt32:
		return fmt.Errorf("%w: customers %d exceeds the INTEGER range (max %d)", ErrInvalidOptions, o.Customers, math.MaxInt32)
	case o.Threads < 0:
		return fmt.Errorf("%w: threads %d is negative", ErrInvalidOptions, o.Threads)
	case o.Format != FormatParquet && o.Format != FormatCSV:
		return fmt.Errorf("%w: format %q is not %q or %q", ErrInvalidOptions, o.Format, FormatParquet, FormatCSV)
	}
	return nil
}

// split returns the first row and the row count of events file f.
func split(rows int64, files, f int) (start, n int64) {
	base, rem := rows/int64(files), rows%int64(files)
	ff := int64(f)
	start = ff*base + min(ff, rem)
	n = base
	if ff < rem {
		n++
	}
	return start, n
}

// output is one file to write: what goes into it, its final path and its
// temporary path in the same directory.
type output struct {
	// events is true for an events file holding rows [start, end); false
	// for the customers table.
	events     bool
	start, end int64
	csv        bool
	final      string
	tmp        string
}

// name returns the output's path relative to Options.Dir, for errors.
func (out output) name() string {
	return filepath.Join(filepath.Base(filepath.Dir(out.final)), filepath.Base(out.final))
}

// newOutput returns an output for final with its temporary name: a hidden
// file that no glob on *.parquet or *.csv matches.
func newOutput(final string, events bool, start, end int64, csv bool) output {
	dir, name := filepath.Split(final)
	return output{
		events: events, start: start, end: end, csv: csv,
		final: final,
		tmp:   filepath.Join(dir, "."+name+".tmp"),
	}
}

var (
	// datasetFile matches the names of the files Generate owns in events/
	// and customers/.
	datasetFile = regexp.MustCompile(`^(part-\d{5,}|customers)\.(parquet|csv)$`)
	// tmpFile matches the names of Generate's temporary files.
	tmpFile = regexp.MustCompile(`^\.(part-\d{5,}|customers)\.(parquet|csv)\.tmp$`)
)

// Generate writes the dataset described by o and returns what it wrote. It
// honours ctx: cancellation interrupts the running DuckDB statement, removes
// the temporary files and returns an error wrapping ctx.Err(). Files are only
// renamed to their final names after all of them were written. Generate must
// not run concurrently on the same Dir.
func Generate(ctx context.Context, o Options) (Result, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return Result{}, err
	}
	eventsDir := filepath.Join(o.Dir, "events")
	customersDir := filepath.Join(o.Dir, "customers")
	for _, d := range []string{eventsDir, customersDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Result{}, fmt.Errorf("create output dir: %w", err)
		}
		// Temporary files of an earlier, interrupted run.
		if err := removeMatching(d, tmpFile.MatchString); err != nil {
			return Result{}, err
		}
	}

	csv := o.Format == FormatCSV
	outs := make([]output, 0, o.Files+2)
	for f := range o.Files {
		start, n := split(o.Rows, o.Files, f)
		final := filepath.Join(eventsDir, fmt.Sprintf("part-%05d.%s", f, o.Format))
		outs = append(outs, newOutput(final, true, start, start+n, csv))
	}
	outs = append(outs, newOutput(filepath.Join(customersDir, "customers.parquet"), false, 0, 0, false))
	if csv {
		outs = append(outs, newOutput(filepath.Join(customersDir, "customers.csv"), false, 0, 0, true))
	}

	if err := write(ctx, o, outs); err != nil {
		for _, out := range outs {
			_ = os.Remove(out.tmp)
		}
		return Result{}, err
	}

	res := Result{Rows: o.Rows}
	keep := make(map[string]bool, len(outs))
	for _, out := range outs {
		if err := os.Rename(out.tmp, out.final); err != nil {
			return Result{}, fmt.Errorf("rename %s: %w", out.tmp, err)
		}
		fi, err := os.Stat(out.final)
		if err != nil {
			return Result{}, fmt.Errorf("stat output: %w", err)
		}
		keep[out.final] = true
		res.Files = append(res.Files, out.final)
		res.Bytes += fi.Size()
	}
	// Remove files of an earlier run that are not part of this dataset, so
	// a glob over events/ or customers/ sees exactly what was generated.
	for _, d := range []string{eventsDir, customersDir} {
		err := removeMatching(d, func(name string) bool {
			return datasetFile.MatchString(name) && !keep[filepath.Join(d, name)]
		})
		if err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// removeMatching removes the regular files in dir whose names match.
func removeMatching(dir string, match func(name string) bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list output dir: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && match(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove stale file: %w", err)
			}
		}
	}
	return nil
}

// write runs one COPY per output into its temporary path. DuckDB's range()
// source is single-threaded, so outputs are written by up to o.Threads
// connections at once; each file's bytes do not depend on that concurrency.
func write(ctx context.Context, o Options, outs []output) (err error) {
	// Both settings are database-wide. preserve_insertion_order is
	// DuckDB's default; it is set explicitly because the dataset's bytes
	// depend on rows staying in range() order.
	config := url.Values{}
	config.Set("threads", strconv.Itoa(o.Threads))
	config.Set("preserve_insertion_order", "true")
	db, err := sql.Open("duckdb", "?"+config.Encode())
	if err != nil {
		return fmt.Errorf("open duckdb: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close duckdb: %w", cerr)
		}
	}()

	workers := min(o.Threads, len(outs))
	db.SetMaxOpenConns(workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan output)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for out := range next {
				if err := copyTo(ctx, db, o, out); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, out := range outs {
		select {
		case next <- out:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Without a failed COPY, the feed loop may still have stopped early
	// because the parent context was cancelled.
	return ctx.Err()
}

// copyTo writes one output with a COPY statement.
func copyTo(ctx context.Context, db *sql.DB, o Options, out output) error {
	opts := fmt.Sprintf("FORMAT PARQUET, ROW_GROUP_SIZE %d, COMPRESSION zstd", o.RowGroupRows)
	if out.csv {
		opts = "FORMAT CSV, HEADER true"
	}
	query := customersQuery(o.Seed, o.Customers)
	if out.events {
		query = eventsQuery(o.Seed, o.Customers, o.Rows, out.start, out.end)
	}
	stmt := fmt.Sprintf("COPY (%s) TO %s (%s)", query, quote(out.tmp), opts)
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			// DuckDB reports an interrupt; make the cancellation visible
			// to errors.Is.
			err = fmt.Errorf("%w: %w", cerr, err)
		}
		return fmt.Errorf("write %s: %w", out.name(), err)
	}
	return nil
}
