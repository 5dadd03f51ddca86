package trino

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/connectors"
)

func errors_Is(err, target error) bool { return errors.Is(err, target) } //nolint:revive // test helper

func TestParseConfig(t *testing.T) {
	tests := map[string]struct {
		uri    string
		opts   map[string]string
		secret string
		check  func(config) string
		err    string
	}{
		"table": {uri: "trino://ann@h:8443/hive/web?table=events", check: func(c config) string {
			if c.user != "ann" || c.host != "h:8443" || c.catalog != "hive" || c.schema != "web" || c.table != "events" || c.https {
				return "wrong fields"
			}
			return ""
		}},
		"default port and user": {uri: "trino://h/c/s?table=t", check: func(c config) string {
			if c.host != "h:8080" || c.user != "liminal" {
				return c.host + " " + c.user
			}
			return ""
		}},
		"options win": {uri: "trino://h/c/s?table=t", opts: map[string]string{"partition_column": "id", "partitions": "4"}, check: func(c config) string {
			if c.partCol != "id" || c.partitions != 4 {
				return "options ignored"
			}
			return ""
		}},
		"password means https": {uri: "trino://u@h/c/s?table=t", secret: "pw", check: func(c config) string {
			if !c.https || !strings.HasPrefix(c.dsn(), "https://u:pw@") {
				return "not https"
			}
			return ""
		}},
		"presto custom client": {uri: "presto://u@h/c/s?query=SELECT+1", check: func(c config) string {
			if !strings.Contains(c.dsn(), "custom_client=presto") {
				return c.dsn()
			}
			return ""
		}},
		"query trailing semicolon": {uri: "trino://h?query=SELECT+1%3B", check: func(c config) string {
			if c.query != "SELECT 1" {
				return c.query
			}
			return ""
		}},
		"both":           {uri: "trino://h/c/s?table=t&query=SELECT+1", err: "exactly one"},
		"neither":        {uri: "trino://h/c/s", err: "exactly one"},
		"unknown option": {uri: "trino://h/c/s?table=t&partiton_column=x", err: "unknown option(s) partiton_column"},
		"password http":  {uri: "trino://u@h/c/s?table=t&ssl=false", secret: "pw", err: "only sent over HTTPS"},
		"one bound":      {uri: "trino://h/c/s?table=t&partition_column=a&lower_bound=1", err: "both"},
		"whole and cols": {uri: "trino://h/c/s?query=SELECT+1&pushdown=whole&partition_column=a", err: "cannot be split"},
		"bad pushdown":   {uri: "trino://h/c/s?table=t&pushdown=all", err: "pushdown"},
		"deep path":      {uri: "trino://h/a/b/c?table=t", err: "/catalog/schema"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConfig(connectors.SourceConfig{URI: tc.uri, Options: tc.opts, Secret: tc.secret})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(c); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestURIPasswordNeverShown(t *testing.T) {
	s, err := Open(t.Context(), connectors.SourceConfig{Name: "x", URI: "trino://u:hunter2@h/c/s?table=t"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(s.Describe(), "hunter2") {
		t.Errorf("Describe: %s", s.Describe())
	}
	_, err = Open(t.Context(), connectors.SourceConfig{Name: "x", URI: "trino://u:hunter2@h/c/s?table=t&bogus=1"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !errors.Is(err, connectors.ErrPermanent) {
		t.Errorf("err = %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("trino://u@h:1/c/s?table=t&partition_column=a&partitions=3", "pw")
	f.Add("presto://h?query=SELECT+1&pushdown=whole", "")
	f.Add("trino://h?0%300000=1", "00000")
	f.Add("trino://0?0000#", "000 ")
	f.Fuzz(func(t *testing.T, uri, secret string) {
		c, err := parseConfig(connectors.SourceConfig{URI: uri, Secret: secret})
		if err == nil {
			if c.password != "" && !c.https {
				t.Fatal("password without https")
			}
			_ = c.dsn()
			_ = c.relation()
		}
		// Leaks: the same URI with a secret that cannot appear in a message
		// by chance (a fuzzed secret can: "000 " is in "0000 (want ...").
		if secret == "" {
			return
		}
		marker := fmt.Sprintf("Zq%xQz", sha256.Sum256([]byte(secret)))
		if _, err := parseConfig(connectors.SourceConfig{URI: uri, Secret: marker}); err != nil &&
			strings.Contains(err.Error(), marker) && !strings.Contains(uri, marker) {
			t.Fatalf("error shows the secret: %v", err)
		}
	})
}
