package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/liminal-data/liminal/partition"
)

// HiveNull is the directory value Hive and Spark write for a NULL
// partition value.
const HiveNull = "__HIVE_DEFAULT_PARTITION__"

// hiveLayout describes a Hive-partitioned directory of Parquet files
// (dir/dt=2024-01-01/country=IL/part-*.parquet). The partition columns
// come from the directory names, URL-unescaped, HiveNull as NULL, typed
// from the partition_types option or inferred from every directory's value
// (all integers: BIGINT, all dates: DATE, else VARCHAR), so that every
// split types them alike.
//
// Pruning: DuckDB reads the partition values from the paths
// (hive_partitioning) and drops the files whose values fail the query's
// filters before it opens them. DuckDB opens the first file of a scan at
// bind time, so every scan starts with an empty Parquet file of the
// source's schema (made once, under the OS temp directory, whose path holds
// the same keys with NULL values): a pruned file is never opened. Planning
// reads the footer of the source's first file only (for the schema and a
// rows-per-byte estimate); the other files are opened when a split that
// keeps them is scanned, so a corrupt file fails there, not at planning.
type hiveLayout struct {
	keys   []string          // partition columns, in path order
	types  map[string]string // DuckDB type per key
	schema string            // the empty schema file every scan starts with
}

var (
	hiveSegment = regexp.MustCompile(`^([^=/]+)=(.*)$`)
	dateLike    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
	typeName    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*(\s*\(\s*\d+\s*(,\s*\d+\s*)?\))?$`)
)

// hiveKeys returns the key=value segments of a directory path, unescaped.
func hiveKeys(dir string) (keys, values []string) {
	for _, seg := range strings.Split(filepath.ToSlash(dir), "/") {
		m := hiveSegment.FindStringSubmatch(seg)
		if m == nil {
			continue
		}
		k, err := url.PathUnescape(m[1])
		if err != nil {
			k = m[1]
		}
		v, err := url.PathUnescape(m[2])
		if err != nil {
			v = m[2]
		}
		keys = append(keys, k)
		values = append(values, v)
	}
	return keys, values
}

// detectHive recognizes a Hive-partitioned directory: every file sits
// below root in key=value directories with the same keys in the same
// order. Option hive_partitioning ("auto", "true", "false") forces it;
// partition_types ("dt=date,country=varchar") types keys explicitly.
func detectHive(root string, paths []string, opts map[string]string) (*hiveLayout, error) {
	mode := strings.ToLower(opts["hive_partitioning"])
	switch mode {
	case "", "auto", "true", "false":
	default:
		return nil, fmt.Errorf("hive_partitioning %q: want auto, true or false", opts["hive_partitioning"])
	}
	if mode == "false" {
		return nil, nil
	}
	explain := func(format string, args ...any) (*hiveLayout, error) {
		if mode == "true" {
			return nil, fmt.Errorf("hive_partitioning: "+format, args...)
		}
		return nil, nil
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return explain("%s is not a directory", root)
	}
	var keys []string
	vals := map[string][]string{}
	for i, p := range paths {
		rel, err := filepath.Rel(root, filepath.Dir(p))
		if err != nil || rel == "." {
			return explain("%s is not in a key=value directory", p)
		}
		var k []string
		for _, seg := range strings.Split(filepath.ToSlash(rel), "/") {
			if !hiveSegment.MatchString(seg) {
				return explain("directory %q of %s is not key=value", seg, p)
			}
		}
		// DuckDB reads key=value segments from the whole path, above the
		// root too: the keys are those of the full path.
		k, v := hiveKeys(filepath.Dir(p))
		if i == 0 {
			keys = k
		} else if strings.Join(k, "/") != strings.Join(keys, "/") {
			return nil, fmt.Errorf("partition keys of %s (%s) differ from %s (%s)", p, strings.Join(k, ", "), paths[0], strings.Join(keys, ", "))
		}
		for j, key := range k {
			vals[key] = append(vals[key], v[j])
		}
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[strings.ToLower(k)] {
			return nil, fmt.Errorf("partition key %q appears twice in the path", k)
		}
		seen[strings.ToLower(k)] = true
	}
	h := &hiveLayout{keys: keys, types: map[string]string{}}
	if spec := strings.TrimSpace(opts["partition_types"]); spec != "" {
		for _, kv := range splitTypes(spec) {
			k, t, ok := strings.Cut(kv, "=")
			k, t = strings.TrimSpace(k), strings.ToUpper(strings.TrimSpace(t))
			if !ok || k == "" || !typeName.MatchString(t) {
				return nil, fmt.Errorf("partition_types: %q is not key=type", kv)
			}
			if !seen[strings.ToLower(k)] {
				return nil, fmt.Errorf("partition_types: %q is not a partition key (have %s)", k, strings.Join(keys, ", "))
			}
			for _, key := range keys {
				if strings.EqualFold(key, k) {
					h.types[key] = t
				}
			}
		}
	}
	for _, k := range keys {
		if _, ok := h.types[k]; !ok {
			h.types[k] = inferType(vals[k])
		}
	}
	return h, nil
}

// splitTypes splits "a=decimal(10,2),b=date" at commas outside parentheses.
func splitTypes(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// inferType types a partition column from all its directory values.
func inferType(values []string) string {
	ints, dates, n := true, true, 0
	for _, v := range values {
		if v == HiveNull {
			continue
		}
		n++
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			ints = false
		}
		if !dateLike.MatchString(v) {
			dates = false
		} else if _, err := time.Parse("2006-01-02", v); err != nil {
			dates = false
		}
	}
	switch {
	case n == 0:
		return "VARCHAR"
	case ints:
		return "BIGINT"
	case dates:
		return "DATE"
	}
	return "VARCHAR"
}

// loadHive reads the first file's footer for the schema and a row
// estimate, and makes the empty schema file; see hiveLayout.
func (s *Source) loadHive(ctx context.Context, paths []string) error {
	first, _, err := readFooter(paths[0])
	if err != nil {
		return err
	}
	perRow := 0.0
	if first.Rows > 0 && first.Size > 0 {
		perRow = float64(first.Size) / float64(first.Rows)
	}
	for i, p := range paths {
		if i == 0 {
			s.files = append(s.files, first)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		f := partition.File{Path: p, Size: st.Size()}
		if perRow > 0 {
			f.Rows = max(1, int64(float64(st.Size())/perRow))
		}
		s.files = append(s.files, f)
	}
	s.hive.schema, err = schemaFile(ctx, paths[0], s.hive.keys)
	return err
}

// schemaFile makes (once per first file and keys) an empty Parquet file
// with the schema of first, at a path whose key=value segments are the
// layout's keys with NULL values.
func schemaFile(ctx context.Context, first string, keys []string) (string, error) {
	st, err := os.Stat(first)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%d\x00%s", first, st.Size(), st.ModTime().UnixNano(), strings.Join(keys, "\x00"))))
	dir := filepath.Join(os.TempDir(), "liminal-hive-schema", hex.EncodeToString(sum[:12]))
	for _, k := range keys {
		dir = filepath.Join(dir, url.PathEscape(k)+"="+HiveNull)
	}
	path := filepath.Join(dir, "schema.parquet")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("schema file: %w", err)
	}
	db, err := metaDB()
	if err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if _, err := db.ExecContext(ctx, "COPY (SELECT * FROM read_parquet("+quote(first)+") LIMIT 0) TO "+quote(tmp)+" (FORMAT parquet)"); err != nil {
		return "", fmt.Errorf("schema file from %s: %w", first, duckErr(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return path, nil
}

// scan is the DuckDB table expression over whole files: partition columns
// from the paths, NULL for HiveNull, cast to their types.
func (h *hiveLayout) scan(pieces []partition.Piece) (string, error) {
	paths := []string{h.schema}
	for _, p := range pieces {
		if !p.Whole() {
			return "", fmt.Errorf("hive-partitioned sources split by whole files, not row ranges")
		}
		paths = append(paths, p.Path)
	}
	repl := make([]string, len(h.keys))
	types := make([]string, len(h.keys))
	for i, k := range h.keys {
		v := "NULLIF(" + ident(k) + ", " + quote(HiveNull) + ")"
		if t := h.types[k]; t != "VARCHAR" {
			v = "CAST(" + v + " AS " + t + ")"
		}
		repl[i] = v + " AS " + ident(k)
		types[i] = quote(k) + ": VARCHAR"
	}
	return fmt.Sprintf("(SELECT * REPLACE (%s) FROM read_parquet(%s, hive_partitioning=true, hive_types={%s}, hive_types_autocast=false))",
		strings.Join(repl, ", "), list(paths), strings.Join(types, ", ")), nil
}
