package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/liminal-data/liminal/connectors"
)

func TestParseURI(t *testing.T) {
	tests := map[string]struct {
		uri, schema, table, query, host string
		err                             bool
	}{
		"table":         {uri: "postgres://u@db:6543/prod?table=customers", table: "customers", host: "db:6543"},
		"schema.table":  {uri: "postgresql://u@db/prod?table=sales.orders", schema: "sales", table: "orders", host: "db:5432"},
		"quoted":        {uri: `postgres://u@db/prod?table="a.b"."c"`, schema: "a.b", table: "c", host: "db:5432"},
		"query":         {uri: "postgres://u@db/prod?query=SELECT+1%3B", query: "SELECT 1", host: "db:5432"},
		"both":          {uri: "postgres://u@db/prod?table=a&query=SELECT+1", err: true},
		"neither":       {uri: "postgres://u@db/prod", err: true},
		"other scheme":  {uri: "mysql://u@db/prod?table=a", err: true},
		"ipv6 and opts": {uri: "postgres://u@[::1]:5433/prod?table=a&sslmode=disable", table: "a", host: "[::1]:5433"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tg, err := parseURI(tc.uri, "pw")
			if tc.err {
				if err == nil || !errors.Is(err, connectors.ErrPermanent) {
					t.Fatalf("err = %v, want a permanent error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.schema != tc.schema || tg.table != tc.table || tg.query != tc.query || tg.host != tc.host {
				t.Fatalf("got %+v", tg)
			}
			if strings.Contains(tg.dsn, "table=") || strings.Contains(tg.dsn, "query=") {
				t.Fatalf("dsn keeps our parameters: %s", tg.dsn)
			}
		})
	}
}

func TestPasswordNeverShown(t *testing.T) {
	const pw = "s3cr3t-Pa55"
	uri := "postgres://alice:" + pw + "@127.0.0.1:1/db?table=t"
	src, err := newSource(connectors.SourceConfig{URI: uri})
	if err != nil {
		t.Fatal(err)
	}
	if src.t.password != pw {
		t.Fatal("password from the URI not used")
	}
	snk, err := newSink(connectors.SinkConfig{URI: uri, Mode: connectors.ModeAppend})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{src.Describe(), snk.Describe(), src.t.dsn, src.t.uri} {
		if strings.Contains(s, pw) {
			t.Errorf("password in %q", s)
		}
	}
	e := src.t.wrap(errors.New("server said: password "+pw+" rejected"), "connect")
	if strings.Contains(e.Error(), pw) || !strings.Contains(e.Error(), "xxxxx") {
		t.Errorf("not scrubbed: %v", e)
	}
}

// An unreachable server gives a transient error that names host:port and
// not the password.
func TestUnreachableServer(t *testing.T) {
	const pw = "hunter2-secret"
	src, err := newSource(connectors.SourceConfig{URI: "postgres://liminal@127.0.0.1:1/db?table=t&connect_timeout=5", Secret: pw})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = src.Schema(ctx)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("error does not name host:port: %v", msg)
	}
	if strings.Contains(msg, pw) {
		t.Errorf("error shows the password: %v", msg)
	}
	if !errors.Is(err, connectors.ErrTransient) {
		t.Errorf("connection refused is not transient: %v", msg)
	}
}

func TestOptions(t *testing.T) {
	for name, opts := range map[string]map[string]string{
		"unknown":    {"partition_col": "id"},
		"partitions": {"partitions": "0"},
		"snapshot":   {"snapshot": "sometimes"},
		"numeric":    {"numeric": "float"},
	} {
		if _, err := newSource(connectors.SourceConfig{URI: "postgres://u@h/db?table=t", Options: opts}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := newSink(connectors.SinkConfig{URI: "postgres://u@h/db?table=t", Mode: connectors.ModeUpsert}); err == nil {
		t.Error("upsert without key columns: no error")
	}
	if _, err := newSink(connectors.SinkConfig{URI: "postgres://u@h/db?query=SELECT+1", Mode: connectors.ModeAppend}); err == nil {
		t.Error("sink on a query: no error")
	}
	if _, err := newSink(connectors.SinkConfig{URI: "postgres://u@h/db?table=t", Mode: connectors.ModeOverwritePartitions}); err == nil {
		t.Error("overwrite_partitions: no error")
	}
}

func TestRegistered(t *testing.T) {
	for _, uri := range []string{"postgres://u@h/db?table=t", "postgresql://u@h/db?table=t"} {
		if _, err := connectors.OpenSource(context.Background(), connectors.SourceConfig{URI: uri}); err != nil {
			t.Errorf("%s: %v", uri, err)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"postgres://u@h/db?table=t", `postgres://u:p@h:1/db?table="a"."b"`, "postgres://h/db?query=SELECT+1", "postgresql://"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		tg, err := parseURI(uri, "pw")
		if err != nil {
			return
		}
		if tg.table == "" && tg.query == "" {
			t.Fatalf("%q: neither table nor query", uri)
		}
	})
}
