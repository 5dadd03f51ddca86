package postgres

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5"

	"github.com/liminal-data/liminal/connectors"
)

// The integration tests run against a real server: LIMINAL_PG_URL (and
// LIMINAL_PG_PASSWORD) when set, else one that the first test needing it
// starts with scripts/postgres.sh and TestMain stops at the end (so unit
// tests and fuzzing alone start nothing). When the server cannot be
// started the integration tests fail with the script's output, unless
// LIMINAL_SKIP_INTEGRATION=1.
var (
	pgURL      string
	pgPassword string
	pgStartErr error
	pgStartup  time.Duration
	pgOnce     sync.Once
	pgStop     = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgStop()
	os.Exit(code)
}

func startServer() func() {
	if u := os.Getenv("LIMINAL_PG_URL"); u != "" {
		pgURL, pgPassword = u, os.Getenv("LIMINAL_PG_PASSWORD")
		return func() {}
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "postgres.sh")
	start := time.Now()
	cmd := exec.Command("bash", script, "start")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		pgStartErr = fmt.Errorf("%s start: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
		return func() {}
	}
	pgStartup = time.Since(start)
	var data string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "LIMINAL_PG_URL":
			pgURL = v
		case "LIMINAL_PG_PASSWORD":
			pgPassword = v
		case "LIMINAL_PG_DATA":
			data = v
		}
	}
	if pgURL == "" {
		pgStartErr = fmt.Errorf("%s start printed no LIMINAL_PG_URL:\n%s\n%s", script, stdout.String(), stderr.String())
	}
	return func() {
		if data != "" {
			_ = exec.Command("bash", script, "stop", data).Run()
		}
	}
}

// needPG skips or fails t when there is no server, starting it on first
// use.
func needPG(t testing.TB) {
	t.Helper()
	if os.Getenv("LIMINAL_SKIP_INTEGRATION") == "1" {
		t.Skip("LIMINAL_SKIP_INTEGRATION=1")
	}
	pgOnce.Do(func() { pgStop = startServer() })
	if pgStartErr != nil {
		t.Fatalf("no PostgreSQL server: %v", pgStartErr)
	}
	if pgURL == "" {
		t.Fatal("no PostgreSQL server")
	}
}

func pgConnect(t testing.TB) *pgx.Conn {
	t.Helper()
	needPG(t)
	tg, err := parseURI(pgURL+"?table=x", pgPassword)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tg.connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func pgExec(t testing.TB, conn *pgx.Conn, q string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

var schemaSeq atomic.Int64

// newSchema creates a schema for one test and drops it afterwards.
func newSchema(t testing.TB) string {
	t.Helper()
	needPG(t)
	conn := pgConnect(t)
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano()%1e9, schemaSeq.Add(1))
	pgExec(t, conn, "CREATE SCHEMA "+name)
	t.Cleanup(func() {
		tg, _ := parseURI(pgURL+"?table=x", pgPassword)
		if c, err := tg.connect(context.Background()); err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
			c.Close(context.Background())
		}
	})
	return name
}

func tableURI(schema, table string) string {
	return pgURL + "?table=" + schema + "." + table
}

// loadTable creates table from rec's schema and copies rec into it.
func loadTable(t testing.TB, conn *pgx.Conn, schema, table string, rec arrow.RecordBatch) {
	t.Helper()
	cols, err := createColumns(rec.Schema())
	if err != nil {
		t.Fatal(err)
	}
	pgExec(t, conn, fmt.Sprintf("CREATE TABLE %s.%s (%s)", ident(schema), ident(table), cols))
	conv := make([]converter, rec.NumCols())
	names := make([]string, rec.NumCols())
	for i, f := range rec.Schema().Fields() {
		conv[i], names[i] = converterFor(f.Type), f.Name
	}
	var rows [][]any
	for r := 0; r < int(rec.NumRows()); r++ {
		row := make([]any, len(conv))
		for c := range conv {
			if rec.Column(c).IsNull(r) {
				continue
			}
			v, err := conv[c](rec.Column(c), r)
			if err != nil {
				t.Fatal(err)
			}
			row[c] = v
		}
		rows = append(rows, row)
	}
	if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{schema, table}, names, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	pgExec(t, conn, fmt.Sprintf("ANALYZE %s.%s", ident(schema), ident(table)))
}

func openSource(t testing.TB, uri string, opts map[string]string) *Source {
	t.Helper()
	src, err := newSource(connectors.SourceConfig{Name: "src", URI: uri, Secret: pgPassword, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func openSink(t testing.TB, uri string, mode connectors.Mode, keys []string) *Sink {
	t.Helper()
	s, err := newSink(connectors.SinkConfig{Name: "out", URI: uri, Secret: pgPassword, Mode: mode, KeyColumns: keys})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// statements collects what sources sent.
type statements struct {
	mu   sync.Mutex
	list []string
}

func (s *statements) add(q string) {
	s.mu.Lock()
	s.list = append(s.list, q)
	s.mu.Unlock()
}

func (s *statements) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.list
	s.list = nil
	return out
}
