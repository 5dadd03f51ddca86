package hive

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The integration tests need a HiveServer2: LIMINAL_HIVE_ADDR=host:port,
// or scripts/hive.sh starts one on first use (and TestMain stops it).
// LIMINAL_SKIP_INTEGRATION=1 skips them; otherwise a server that cannot
// start fails them with the script's output. The test tables live in a
// database of their own, dropped at the end; loading them relies on the
// server sharing this machine's file system (CREATE TABLE ... LOCATION),
// which a local server started by hive.sh does.

var server struct {
	once    sync.Once
	host    string
	port    int
	dir     string // set when this process started the server
	err     error
	db      string
	setupMu sync.Mutex
}

func TestMain(m *testing.M) {
	code := m.Run()
	if server.host != "" && server.err == nil && server.db != "" {
		if c, err := dial(context.Background(), testConfig("")); err == nil {
			_ = c.run(context.Background(), "DROP DATABASE IF EXISTS "+server.db+" CASCADE")
			c.close()
		}
	}
	if server.dir != "" && os.Getenv("LIMINAL_HIVE_KEEP") != "1" {
		_ = exec.Command("bash", scriptPath(), "stop", server.dir).Run()
	}
	os.Exit(code)
}

func scriptPath() string {
	p, _ := filepath.Abs(filepath.Join("..", "..", "scripts", "hive.sh"))
	return p
}

// ServerForTest returns the test server's host and port and the test
// database, starting the server on first use.
func ServerForTest(t testing.TB) (string, int, string) {
	t.Helper()
	if os.Getenv("LIMINAL_SKIP_INTEGRATION") == "1" {
		t.Skip("LIMINAL_SKIP_INTEGRATION=1")
	}
	server.once.Do(func() {
		addr := os.Getenv("LIMINAL_HIVE_ADDR")
		if addr == "" {
			start := time.Now()
			out, err := exec.Command("bash", scriptPath(), "start").CombinedOutput()
			if err != nil {
				server.err = fmt.Errorf("scripts/hive.sh start: %v\n%s", err, out)
				return
			}
			for _, l := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(l, "LIMINAL_HIVE_ADDR="); ok {
					addr = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "LIMINAL_HIVE_DIR="); ok {
					server.dir = strings.TrimSpace(v)
				}
			}
			if addr == "" {
				server.err = fmt.Errorf("scripts/hive.sh start printed no LIMINAL_HIVE_ADDR:\n%s", out)
				return
			}
			fmt.Fprintf(os.Stderr, "hive test server %s started in %v\n", addr, time.Since(start).Round(100*time.Millisecond))
		}
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			server.err = fmt.Errorf("LIMINAL_HIVE_ADDR %q: %v", addr, err)
			return
		}
		server.host = h
		server.port, _ = strconv.Atoi(p)
		server.db = fmt.Sprintf("liminal_it_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
		c, err := dial(context.Background(), testConfig(""))
		if err != nil {
			server.err = err
			return
		}
		defer c.close()
		server.err = c.run(context.Background(), "CREATE DATABASE "+server.db)
	})
	if server.err != nil {
		t.Fatalf("hive test server: %v", server.err)
	}
	return server.host, server.port, server.db
}

func testConfig(db string) *config {
	return &config{host: server.host, port: server.port, user: "liminal", db: db, auth: "NOSASL",
		fetchSize: DefaultFetchSize, connectTimeout: 10 * time.Second, socketTimeout: 5 * time.Minute}
}

// Exec runs statements on the test server in the test database.
func Exec(t testing.TB, stmts ...string) {
	t.Helper()
	_, _, db := ServerForTest(t)
	c, err := dial(context.Background(), testConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, s := range stmts {
		if err := c.run(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// QueryText runs q on the test server and returns its rows as text (NULL
// as nil).
func QueryText(t testing.TB, q string) [][]*string {
	t.Helper()
	_, _, db := ServerForTest(t)
	c, err := dial(context.Background(), testConfig(db))
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	rows, err := c.query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return rows
}

var tableSeq atomic.Int64

// TableName returns a new table name in the test database.
func TableName(prefix string) string {
	return fmt.Sprintf("%s_%d", prefix, tableSeq.Add(1))
}

// URI is the hive:// URI of the test database with the given query.
func URI(t testing.TB, query string) string {
	h, p, db := ServerForTest(t)
	return fmt.Sprintf("hive://%s:%d/%s?%s", h, p, db, query)
}
