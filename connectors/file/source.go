package file

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	pqfile "github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
	"github.com/duckdb/duckdb-go/v2"
	"golang.org/x/sync/errgroup"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

func init() {
	connectors.RegisterSource("file", OpenSource)
	connectors.RegisterSink("file", OpenSink)
}

// Format is a file format.
type Format string

// Supported formats.
const (
	Parquet Format = "parquet"
	CSV     Format = "csv"
)

// ErrNoFiles is wrapped when a path or glob matches no input file.
var ErrNoFiles = errors.New("no input files")

func formatOf(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".parquet", ".pq", ".parq":
		return Parquet
	case ".csv", ".tsv", ".txt":
		return CSV
	}
	return ""
}

func parseFormat(s string) (Format, error) {
	switch Format(strings.ToLower(s)) {
	case "":
		return "", nil
	case Parquet:
		return Parquet, nil
	case CSV:
		return CSV, nil
	}
	return "", connectors.Permanent(fmt.Errorf("unknown format %q (want parquet or csv)", s))
}

// localPath turns a file URI or path into an absolute path.
func localPath(uri, base string) string {
	p := strings.TrimPrefix(uri, "file://")
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(h, p[2:])
		}
	}
	if !filepath.IsAbs(p) && base != "" {
		p = filepath.Join(base, p)
	}
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p
}

// Source reads a set of Parquet or CSV files.
type Source struct {
	name   string
	uri    string
	format Format
	files  []partition.File
	csv    string // read_csv options (whole-input dialect and types), CSV only
	hive   *hiveLayout
}

var (
	_ connectors.NativeSource = (*Source)(nil)
	_ connectors.ArrowSource  = (*Source)(nil)
)

// OpenSource resolves c.URI (a file, a directory of files or a glob) and
// reads every footer (Parquet) or header (CSV) so that missing, empty,
// corrupt and mismatched inputs fail here, before any work.
func OpenSource(ctx context.Context, c connectors.SourceConfig) (connectors.Source, error) {
	f, err := parseFormat(c.Format)
	if err != nil {
		return nil, err
	}
	paths, err := expand(localPath(c.URI, c.BaseDir), f)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("%s: %w", c.URI, err))
	}
	if f == "" {
		f, err = detect(paths)
		if err != nil {
			return nil, connectors.Permanent(fmt.Errorf("%s: %w", c.URI, err))
		}
	}
	s := &Source{name: c.Name, uri: c.URI, format: f}
	if f == Parquet {
		s.hive, err = detectHive(localPath(c.URI, c.BaseDir), paths, c.Options)
		if err != nil {
			return nil, connectors.Permanent(fmt.Errorf("%s: %w", c.URI, err))
		}
	}
	switch {
	case s.hive != nil:
		err = s.loadHive(ctx, paths)
	case f == Parquet:
		err = s.loadParquet(ctx, paths)
	case f == CSV:
		err = s.loadCSV(ctx, paths, c.Options)
	}
	if err != nil {
		return nil, connectors.Permanent(err)
	}
	return s, nil
}

// expand lists the input files of a path, directory (recursively, skipping
// names that start with "_" or ".", like _SUCCESS and staging) or glob.
func expand(p string, f Format) ([]string, error) {
	var paths []string
	if strings.ContainsAny(p, "*?[") {
		m, err := filepath.Glob(p)
		if err != nil {
			return nil, err
		}
		for _, q := range m {
			if st, err := os.Stat(q); err == nil && st.Mode().IsRegular() {
				paths = append(paths, q)
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("%w: no file matches the pattern", ErrNoFiles)
		}
		sort.Strings(paths)
		return paths, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no such file or directory")
		}
		return nil, err
	}
	if st.Mode().IsRegular() {
		return []string{p}, nil
	}
	err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if q != p && (strings.HasPrefix(n, "_") || strings.HasPrefix(n, ".")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && (f == "" && formatOf(n) != "" || f != "" && (formatOf(n) == f || formatOf(n) == "")) {
			paths = append(paths, q)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: directory has no .parquet or .csv files", ErrNoFiles)
	}
	sort.Strings(paths)
	return paths, nil
}

func detect(paths []string) (Format, error) {
	f := formatOf(paths[0])
	for _, p := range paths {
		g := formatOf(p)
		if g == "" {
			return "", fmt.Errorf("cannot tell the format of %s from its extension; set format: parquet or csv", filepath.Base(p))
		}
		if g != f {
			return "", fmt.Errorf("mixed formats (%s and %s); set format or narrow the path", filepath.Base(paths[0]), filepath.Base(p))
		}
	}
	return f, nil
}

// loadParquet reads every footer (in Go, in parallel: a few milliseconds
// for many files, where DuckDB's parquet_metadata() takes tens) for the row
// groups the planner splits on, and checks that all files share one schema.
func (s *Source) loadParquet(ctx context.Context, paths []string) error {
	files := make([]partition.File, len(paths))
	schemas := make([]*schema.Schema, len(paths))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.NumCPU())
	for i, p := range paths {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			files[i], schemas[i], err = readFooter(p)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i := 1; i < len(paths); i++ {
		if err := sameSchema(paths[0], schemas[0], paths[i], schemas[i]); err != nil {
			return err
		}
	}
	s.files = files
	return nil
}

func readFooter(p string) (partition.File, *schema.Schema, error) {
	f := partition.File{Path: p}
	st, err := os.Stat(p)
	if err != nil {
		return f, nil, err
	}
	f.Size = st.Size()
	r, err := pqfile.OpenParquetFile(p, false)
	if err != nil {
		return f, nil, fmt.Errorf("%s: not a readable Parquet file (%v)", p, err)
	}
	defer r.Close()
	md := r.MetaData()
	for i := range md.NumRowGroups() {
		rg := md.RowGroup(i)
		b := rg.TotalCompressedSize()
		if b <= 0 {
			b = rg.TotalByteSize()
		}
		f.RowGroups = append(f.RowGroups, partition.RowGroup{Rows: rg.NumRows(), Bytes: b})
		f.Rows += rg.NumRows()
	}
	return f, md.Schema, nil
}

func sameSchema(p0 string, s0 *schema.Schema, p string, sc *schema.Schema) error {
	if s0.Equals(sc) {
		return nil
	}
	if s0.NumColumns() != sc.NumColumns() {
		return fmt.Errorf("schema of %s (%d columns) differs from %s (%d columns)", p, sc.NumColumns(), p0, s0.NumColumns())
	}
	for i := range s0.NumColumns() {
		a, b := describeColumn(s0.Column(i)), describeColumn(sc.Column(i))
		if a != b {
			return fmt.Errorf("schema of %s differs from %s: column %d is %s there, %s here", p, p0, i+1, a, b)
		}
	}
	return fmt.Errorf("schema of %s differs from %s", p, p0)
}

func describeColumn(c *schema.Column) string {
	d := c.Path() + " " + c.PhysicalType().String()
	if lt := c.LogicalType(); lt != nil && lt.String() != "None" {
		d += " " + lt.String()
	}
	return d
}

// loadCSV sniffs the dialect and column types once, from the first file as
// DuckDB does for a multi-file read, so that every partition parses its
// files exactly as one read_csv over the whole input would. Headers of all
// files must agree.
func (s *Source) loadCSV(ctx context.Context, paths []string, opts map[string]string) error {
	db, err := metaDB()
	if err != nil {
		return err
	}
	var (
		delim, quoteCh, escape, newline, comment string
		skip                                     int64
		header                                   bool
		columns                                  any
		dateFmt, tsFmt                           sql.NullString
	)
	extra := ""
	if d, ok := opts["delim"]; ok {
		extra += ", delim=" + quote(d)
	}
	if h, ok := opts["header"]; ok {
		extra += ", header=" + map[bool]string{true: "true", false: "false"}[h == "true"]
	}
	sniff := func(extra string) error {
		return db.QueryRowContext(ctx, `SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, DateFormat, TimestampFormat FROM sniff_csv(`+quote(paths[0])+extra+`)`).
			Scan(&delim, &quoteCh, &escape, &newline, &comment, &skip, &header, &columns, &dateFmt, &tsFmt)
	}
	if err := sniff(extra); err != nil {
		return fmt.Errorf("%s: %w", paths[0], duckErr(err))
	}
	// A ragged file makes the sniffer give up on every delimiter and read
	// whole lines as one column; a .csv file is comma-separated, so read it
	// so and let the ragged line fail with its line number.
	if cols, _ := columns.([]any); len(cols) == 1 && opts["delim"] == "" {
		name, _ := obj(cols[0])["name"].(string)
		if strings.Contains(name, ",") {
			if err := sniff(extra + ", delim=','"); err != nil {
				if rerr := raggedLine(paths[0]); rerr != nil {
					return fmt.Errorf("%s: ragged rows: %w", paths[0], rerr)
				}
				return fmt.Errorf("%s: %w", paths[0], duckErr(err))
			}
		}
	}
	// The sniffer reports "no character" as "(empty)" (DuckDB 2.0), which
	// read_csv refuses as a quote of more than one byte.
	for _, c := range []*string{&delim, &quoteCh, &escape, &comment} {
		if *c == "(empty)" {
			*c = ""
		}
	}
	cols, ok := columns.([]any)
	if !ok || len(cols) == 0 {
		return fmt.Errorf("%s: no columns found", paths[0])
	}
	var defs, names []string
	for _, c := range cols {
		m, _ := c.(map[string]any)
		n, _ := m["name"].(string)
		t, _ := m["type"].(string)
		defs = append(defs, quote(n)+": "+quote(t))
		names = append(names, n)
	}
	o := fmt.Sprintf("auto_detect=false, delim=%s, quote=%s, escape=%s, new_line=%s, skip=%d, header=%t, columns={%s}",
		quote(delim), quote(quoteCh), quote(escape), quote(newline), skip, header, strings.Join(defs, ", "))
	if comment != "" {
		o += ", comment=" + quote(comment)
	}
	if dateFmt.Valid && dateFmt.String != "" {
		o += ", dateformat=" + quote(dateFmt.String)
	}
	if tsFmt.Valid && tsFmt.String != "" {
		o += ", timestampformat=" + quote(tsFmt.String)
	}
	s.csv = o
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rows, hdr, err := csvStats(p, delim, header)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if header && strings.Join(hdr, "\x00") != strings.Join(names, "\x00") {
			return fmt.Errorf("header of %s %q differs from %s %q", p, hdr, paths[0], names)
		}
		s.files = append(s.files, partition.File{Path: p, Size: st.Size(), Rows: rows})
	}
	return nil
}

// csvStats reads the header and estimates the row count from the average
// line length of the first 1 MiB, without reading the whole file.
func csvStats(p, delim string, header bool) (rows int64, hdr []string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<20)
	if header {
		r := csv.NewReader(strings.NewReader(firstLine(br)))
		if len(delim) == 1 {
			r.Comma = rune(delim[0])
		}
		r.LazyQuotes = true
		hdr, _ = r.Read()
	}
	buf, _ := br.Peek(1 << 20)
	lines := int64(strings.Count(string(buf), "\n"))
	if int64(len(buf)) >= st.Size()-1 || lines == 0 {
		rows = lines
		if len(buf) > 0 && buf[len(buf)-1] != '\n' {
			rows++
		}
	} else {
		rows = int64(float64(st.Size()) * float64(lines) / float64(len(buf)))
	}
	return rows, hdr, nil
}

func firstLine(br *bufio.Reader) string {
	line, _ := br.ReadString('\n')
	return strings.TrimRight(line, "\r\n")
}

// Describe implements connectors.Source.
func (s *Source) Describe() string {
	if s.hive != nil {
		return fmt.Sprintf("%s (%s, %d files, hive-partitioned by %s)", s.uri, s.format, len(s.files), strings.Join(s.hive.keys, ", "))
	}
	return fmt.Sprintf("%s (%s, %d files)", s.uri, s.format, len(s.files))
}

// Format is the source's file format.
func (s *Source) Format() Format { return s.format }

// Files are the input files with their row groups.
func (s *Source) Files() []partition.File { return s.files }

// Splits implements connectors.Source. CSV files are split by file only.
func (s *Source) Splits(_ context.Context, o partition.Options) ([]partition.Split, error) {
	if s.format == CSV && o.By != partition.None {
		o.By = partition.Files
	}
	return partition.PlanFiles(s.name, s.files, o)
}

// ScanSQL implements connectors.NativeSource.
func (s *Source) ScanSQL(sp *partition.Split) (string, error) {
	var pieces []partition.Piece
	if sp == nil {
		for _, f := range s.files {
			pieces = append(pieces, partition.Piece{Path: f.Path})
		}
	} else {
		pieces = sp.Pieces
	}
	if len(pieces) == 0 {
		return "", fmt.Errorf("split has no files")
	}
	if s.hive != nil {
		return s.hive.scan(pieces)
	}
	var whole []string
	var parts []string
	for _, p := range pieces {
		if p.Whole() {
			whole = append(whole, p.Path)
			continue
		}
		if s.format != Parquet {
			return "", fmt.Errorf("row ranges need parquet, not %s", s.format)
		}
		parts = append(parts, fmt.Sprintf("(SELECT * EXCLUDE (file_row_number) FROM read_parquet(%s, file_row_number=true) WHERE file_row_number >= %d AND file_row_number < %d)",
			quote(p.Path), p.RowStart, p.RowEnd))
	}
	if len(whole) > 0 {
		switch s.format {
		case Parquet:
			parts = append(parts, "read_parquet("+list(whole)+")")
		case CSV:
			parts = append(parts, "read_csv("+list(whole)+", "+s.csv+")")
		}
	}
	if len(parts) == 1 {
		return parts[0], nil
	}
	return "(" + strings.Join(parts, " UNION ALL ") + ")", nil
}

// Schema implements connectors.Source: the Arrow schema DuckDB produces.
func (s *Source) Schema(ctx context.Context) (*arrow.Schema, error) {
	r, err := s.query(ctx, nil, nil, " LIMIT 0")
	if err != nil {
		return nil, err
	}
	defer r.Release()
	return r.Schema(), nil
}

// Read implements connectors.ArrowSource through DuckDB's Arrow interface.
// duckdb-go's Arrow interface materializes a query result before returning
// the reader, so Read holds one split in memory; the executor never uses it for
// file sources (DuckDB scans them natively).
func (s *Source) Read(ctx context.Context, sp partition.Split, cols []string) (array.RecordReader, error) {
	return s.query(ctx, &sp, cols, "")
}

func (s *Source) query(ctx context.Context, sp *partition.Split, cols []string, suffix string) (array.RecordReader, error) {
	scan, err := s.ScanSQL(sp)
	if err != nil {
		return nil, err
	}
	proj := "*"
	if len(cols) > 0 {
		q := make([]string, len(cols))
		for i, c := range cols {
			q[i] = ident(c)
		}
		proj = strings.Join(q, ", ")
	}
	db, err := metaDB()
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	var rr array.RecordReader
	err = conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("not a database/sql driver connection")
		}
		a, err := duckdb.NewArrowFromConn(dconn)
		if err != nil {
			return err
		}
		rr, err = a.QueryContext(ctx, "SELECT "+proj+" FROM "+scan+suffix)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, duckErr(err)
	}
	return &closingReader{RecordReader: rr, close: conn.Close}, nil
}

// closingReader closes the DuckDB connection behind a reader on its last
// Release.
type closingReader struct {
	array.RecordReader
	close func() error
	done  bool
}

func (r *closingReader) Release() {
	r.RecordReader.Release()
	if !r.done {
		r.done = true
		_ = r.close()
	}
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// raggedLine finds the first record whose field count differs from the
// header's, for an error that names the line.
func raggedLine(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.LazyQuotes = true
	for {
		if _, err := r.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}
