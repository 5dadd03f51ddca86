package hive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/beltran/gohive/hiveserver"

	"github.com/liminal-data/liminal/connectors"
)

func TestServerMessage(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"spark parse": {"org.apache.hive.service.cli.HiveSQLException: Error running query: [PARSE_SYNTAX_ERROR] org.apache.spark.sql.catalyst.parser.ParseException: \n[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)\n\n== SQL ==\nSELEC 1\n^^^\n\n\tat org.apache.spark.X(X.scala:1)\n",
			"[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)"},
		"plain": {"Error while compiling statement: FAILED: SemanticException [Error 10001]: Line 1:14 Table not found 'x'", "Error while compiling statement: FAILED: SemanticException [Error 10001]: Line 1:14 Table not found 'x'"},
	}
	for name, tc := range tests {
		if got := serverMessage(tc.in); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := map[string]struct {
		uri    string
		opts   map[string]string
		secret string
		want   string // "host:port db table query auth user pc fetch" or error substring
	}{
		"table":         {uri: "hive://h:1234/sales?table=events", want: "h:1234 sales events  NOSASL liminal  10000"},
		"default port":  {uri: "hive://bob@h/db?query=SELECT%201&auth=none&fetch_size=5", want: "h:10000 db  SELECT 1 NONE bob  5"},
		"options win":   {uri: "hive://h/db?table=a", opts: map[string]string{"table": "b", "partition_column": "id"}, want: "h:10000 db b  NOSASL liminal id 10000"},
		"both":          {uri: "hive://h/db?table=a&query=x", want: "exactly one"},
		"neither":       {uri: "hive://h/db", want: "exactly one"},
		"password":      {uri: "hive://u:pw@h/db?table=a", want: "secret_env"},
		"ldap":          {uri: "hive://u@h/db?table=a&auth=LDAP", want: "needs a password"},
		"ldap secret":   {uri: "hive://u@h/db?table=a&auth=LDAP", secret: "s3cret", want: "h:10000 db a  LDAP u  10000"},
		"bad auth":      {uri: "hive://h/db?table=a&auth=KERBEROS", want: "unknown auth"},
		"unknown":       {uri: "hive://h/db?table=a&tabel=b", want: `unknown option "tabel"`},
		"bad port":      {uri: "hive://h:0/db?table=a", want: "port"},
		"bad fetch":     {uri: "hive://h/db?table=a&fetch_size=0", want: "fetch_size"},
		"nested path":   {uri: "hive://h/a/b?table=a", want: "database"},
		"scheme":        {uri: "trino://h/db?table=a", want: "scheme"},
		"query trimmed": {uri: "hive://h?query=SELECT%202%3B%20", want: "h:10000   SELECT 2 NOSASL liminal  10000"},
	}
	for name, tc := range tests {
		c, err := parseConfig(tc.uri, tc.opts, tc.secret)
		var got string
		if err != nil {
			got = err.Error()
			if !strings.Contains(got, tc.want) {
				t.Errorf("%s: error %q, want %q", name, got, tc.want)
			}
			if strings.Contains(got, "pw") && name == "password" {
				t.Errorf("%s: error shows the password: %q", name, got)
			}
			continue
		}
		got = fmt.Sprintf("%s:%d %s %s %s %s %s %s %d", c.host, c.port, c.db, c.table, c.query, c.auth, c.user, c.partitionColumn, c.fetchSize)
		if got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = OpenSource(context.Background(), connectors.SourceConfig{Name: "x", URI: "hive://" + addr + "/db?table=t", Secret: "hunter2"})
	if err == nil {
		t.Fatal("no error")
	}
	if !errors.Is(err, connectors.ErrTransient) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("err %v: want a transient error naming %s", err, addr)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("the password is in the error")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %v", time.Since(start))
	}
}

func TestParseType(t *testing.T) {
	tests := map[string]string{
		"int":                              "int32",
		"DECIMAL(10, 2)":                   "decimal(10, 2)",
		"decimal":                          "decimal(10, 0)",
		"varchar(12)":                      "utf8",
		"array<map<string,array<bigint>>>": "list<item: map<utf8, list<item: int64, nullable>, items_nullable>, nullable>",
		"struct<a:int,`b c`:string>":       "struct<a: int32 nullable, b c: utf8 nullable>",
		"struct<x:struct<y:date>>":         "struct<x: struct<y: date32 nullable> nullable>",
		"timestamp":                        "timestamp[us]",
		"interval day to second":           "",
		"map<int,decimal(38,10)>":          "map<int32, decimal(38, 10), items_nullable>",
		"array<int":                        "",
		"decimal(40,2)":                    "",
		"struct<a int>":                    "",
		"array<int>>":                      "",
	}
	for in, want := range tests {
		ty, err := parseType(in)
		if want == "" {
			if err == nil && in != "interval day to second" {
				t.Errorf("%s: no error, got %s", in, ty.arrowType())
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := ty.arrowType().String(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestNestedText(t *testing.T) {
	tests := map[string]struct {
		typ, in, want string
	}{
		"ints":         {"array<int>", "[1,null, 3]", "[1,null,3]"},
		"empty":        {"array<int>", "[]", "[]"},
		"string keys":  {"map<string,int>", `{"a:b":1,"c":null}`, `[{"key":"a:b","value":1},{"key":"c","value":null}]`},
		"int keys":     {"map<int,string>", `{1:"x,y",2:"say "hi""}`, `[{"key":1,"value":"x,y"},{"key":2,"value":"say \"hi\""}]`},
		"struct":       {"struct<a:int,b:string>", `{"b":"x","a":2}`, `{"a":2,"b":"x"}`},
		"missing":      {"struct<a:int,b:string>", `{"a":2}`, `{"a":2,"b":null}`},
		"escaped":      {"array<string>", `["a\"b\\c"]`, `["a\"b\\c"]`},
		"dates":        {"array<date>", `["2024-01-02",null]`, `["2024-01-02",null]`},
		"decimals":     {"array<decimal(5,2)>", `[1.5,-0.01]`, `["1.5","-0.01"]`},
		"bad":          {"array<int>", "[1,x]", "error"},
		"unterminated": {"array<string>", `["a`, "error"},
		"trailing":     {"array<int>", "[1] 2", "error"},
	}
	for name, tc := range tests {
		ty, err := parseType(tc.typ)
		if err != nil {
			t.Fatal(err)
		}
		b := array.NewBuilder(memory.DefaultAllocator, ty.arrowType())
		col := column{&hiveserver.TColumn{StringVal: &hiveserver.TStringColumn{Values: []string{tc.in}, Nulls: []byte{0}}}}
		err = appendColumn(b, col)
		if tc.want == "error" {
			if err == nil {
				t.Errorf("%s: no error", name)
			}
			b.Release()
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			b.Release()
			continue
		}
		a := b.NewArray()
		if got := a.ValueStr(0); got != tc.want {
			t.Errorf("%s: %s, want %s", name, got, tc.want)
		}
		a.Release()
		b.Release()
	}
}

// FuzzParseConfig checks that no URI makes the parser panic.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"hive://h:1/db?table=t", "hive://u@h?query=SELECT%201&auth=LDAP", "hive://:0/%zz", "hive://h/db?table=a&partition_column=x&fetch_size=9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		c, err := parseConfig(uri, nil, "pw")
		if err == nil && (c.host == "" || (c.table == "") == (c.query == "")) {
			t.Fatalf("accepted %q as %+v", uri, c)
		}
	})
}

// FuzzNestedText checks that no value text makes the parser panic.
func FuzzNestedText(f *testing.F) {
	for _, s := range []string{`[{"a":1,"b":{"k":[1,2]}},null]`, `[]`, `[{"a":null}]`, `[{"b":{1:[null]}}]`} {
		f.Add(s)
	}
	ty, _ := parseType("array<struct<a:int,b:map<string,array<bigint>>>>")
	f.Fuzz(func(t *testing.T, in string) {
		b := array.NewBuilder(memory.DefaultAllocator, ty.arrowType())
		defer b.Release()
		err := appendColumn(b, column{&hiveserver.TColumn{StringVal: &hiveserver.TStringColumn{Values: []string{in}}}})
		if err != nil {
			return // the reader drops the builder without building (a partial value is left)
		}
		a := b.NewArray()
		defer a.Release()
		if a.Len() != 1 {
			t.Fatalf("%d values", a.Len())
		}
	})
}

// FuzzParseType checks that no type string makes the parser panic.
func FuzzParseType(f *testing.F) {
	for _, s := range []string{"array<struct<a:int,b:map<string,decimal(10,2)>>>", "struct<`x`:int>", "decimal(", "map<int"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ty, err := parseType(s); err == nil {
			_ = ty.arrowType()
		}
	})
}
