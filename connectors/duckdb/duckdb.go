package duckdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow/array"
	goduckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/liminal-data/liminal/connectors"
)

// location is a parsed duckdb:// URI.
type location struct {
	uri    string
	path   string // absolute database file
	schema string // "" = main
	table  string
}

// parseURI parses duckdb:///abs/path.duckdb?table=[schema.]T, or
// duckdb://rel/path.duckdb?table=T with the path relative to baseDir (the
// spec's directory; the working directory when empty).
func parseURI(uri, baseDir string) (*location, error) {
	rest, ok := strings.CutPrefix(uri, "duckdb://")
	if !ok {
		return nil, connectors.Permanent(fmt.Errorf("duckdb: URI %q must start with duckdb://", uri))
	}
	path, query, _ := strings.Cut(rest, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("duckdb: URI %q: %v", uri, err))
	}
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	if path == "" || path == "/" {
		return nil, connectors.Permanent(fmt.Errorf("duckdb: URI %q has no database file", uri))
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(baseDir, path)
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	l := &location{uri: uri, path: filepath.Clean(path)}
	table := q.Get("table")
	if table == "" {
		return nil, connectors.Permanent(fmt.Errorf("duckdb: URI %q needs ?table=name", uri))
	}
	for k := range q {
		if k != "table" {
			return nil, connectors.Permanent(fmt.Errorf("duckdb: URI %q: unknown parameter %q (options go in the spec's options)", uri, k))
		}
	}
	if s, t, ok := strings.Cut(table, "."); ok {
		l.schema, l.table = s, t
	} else {
		l.table = table
	}
	return l, nil
}

// catalog is the name the database file is attached under. The file is
// attached to an in-memory database rather than opened as the default one:
// DuckDB 2.0 refuses to register an Arrow stream (the Go-side batches of a
// sink, TestSinkConformance) on a connection whose default database is a file.
const catalog = "liminal_file"

func (l *location) qualified(table string) string {
	schema := l.schema
	if schema == "" {
		schema = "main"
	}
	return ident(catalog) + "." + ident(schema) + "." + ident(table)
}

func ident(s string) string   { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func shortHash(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])[:12]
}

// A DuckDB file is open at most once per process (DuckDB allows one
// writing process per file, and one instance per file in a process), shared
// by every source and sink on it and closed when the last user goes, so
// that the file is not held between runs.
var files struct {
	mu   sync.Mutex
	open map[string]*shared
}

type shared struct {
	db       *sql.DB
	readOnly bool
	refs     int
}

// acquire opens path (read-only when ro and nobody in the process writes
// it) and returns the database and its release.
func acquire(path string, ro bool) (*sql.DB, func(), error) {
	files.mu.Lock()
	defer files.mu.Unlock()
	if files.open == nil {
		files.open = map[string]*shared{}
	}
	sh := files.open[path]
	if sh != nil && sh.readOnly && !ro {
		if sh.refs > 0 {
			return nil, nil, connectors.Transient(fmt.Errorf("duckdb %s: the file is being read in this process; it cannot be opened for writing now", path))
		}
		sh.db.Close()
		delete(files.open, path)
		sh = nil
	}
	if sh == nil {
		attach := "ATTACH " + literal(path) + " AS " + ident(catalog)
		if ro {
			attach += " (READ_ONLY)"
		}
		c, err := goduckdb.NewConnector("", nil)
		if err != nil {
			return nil, nil, classify(fmt.Errorf("duckdb %s: open: %w", path, err))
		}
		db := sql.OpenDB(c)
		// TIMESTAMPTZ reaches Arrow in the session time zone, by default
		// the host's: pin it, as the engine does.
		if _, err := db.Exec("SET GLOBAL TimeZone = 'UTC'; " + attach); err != nil {
			db.Close()
			return nil, nil, classify(fmt.Errorf("duckdb %s: open: %w", path, err))
		}
		sh = &shared{db: db, readOnly: ro}
		files.open[path] = sh
	}
	sh.refs++
	var once sync.Once
	return sh.db, func() {
		once.Do(func() {
			files.mu.Lock()
			defer files.mu.Unlock()
			sh.refs--
			if sh.refs == 0 && files.open[path] == sh {
				sh.db.Close()
				delete(files.open, path)
			}
		})
	}, nil
}

// classify marks lock conflicts transient (another process holds the
// file) and everything else permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "Could not set lock") || strings.Contains(msg, "Conflicting lock") ||
		strings.Contains(msg, "Transaction conflict") || strings.Contains(msg, "write-write conflict") {
		return connectors.Transient(err)
	}
	return connectors.Permanent(err)
}

// withArrow runs f with duckdb-go's Arrow interface on conn.
func withArrow(conn *sql.Conn, f func(a *goduckdb.Arrow) error) error {
	return conn.Raw(func(dc any) error {
		d, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("not a driver connection: %T", dc)
		}
		a, err := goduckdb.NewArrowFromConn(d)
		if err != nil {
			return err
		}
		return f(a)
	})
}

// query runs q and returns its (materialized) result.
func query(ctx context.Context, conn *sql.Conn, q string) (array.RecordReader, error) {
	var rr array.RecordReader
	err := withArrow(conn, func(a *goduckdb.Arrow) error {
		var err error
		rr, err = a.QueryContext(ctx, q)
		return err
	})
	return rr, err
}

func init() {
	connectors.RegisterSource("duckdb", OpenSource)
	connectors.RegisterSink("duckdb", OpenSink)
}
