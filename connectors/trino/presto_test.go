package trino

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/connectors"
	"github.com/liminal-data/liminal/partition"
)

func TestPrestoHeaders(t *testing.T) {
	h := http.Header{}
	h.Set("X-Trino-User", "u")
	h.Set("X-Trino-Catalog", "tpch")
	h.Set("X-Trino-Client-Capabilities", "PATH,PARAMETRIC_DATETIME")
	h.Set("Authorization", "Basic x")
	out := prestoRequestHeaders(h)
	if out.Get("X-Presto-User") != "u" || out.Get("X-Presto-Catalog") != "tpch" || out.Get("Authorization") != "Basic x" {
		t.Errorf("request headers %v", out)
	}
	for k := range out {
		if strings.HasPrefix(k, "X-Trino-") || strings.Contains(k, "Capabilities") {
			t.Errorf("request header %s left", k)
		}
	}
	resp := http.Header{}
	resp.Set("X-Presto-Added-Prepare", "s=SELECT+1")
	resp.Set("Content-Type", "application/json")
	trinoResponseHeaders(resp)
	if resp.Get("X-Trino-Added-Prepare") != "s=SELECT+1" || resp.Get("X-Presto-Added-Prepare") != "" {
		t.Errorf("response headers %v", resp)
	}
}

// fakePresto answers every statement with a response recorded from
// PrestoDB 0.296 (testdata/presto-0.296-row-response.json: ROW, ARRAY,
// MAP, nested ROW, DECIMAL and TIMESTAMP columns) and rejects Trino
// headers, as PrestoDB would ignore them.
func fakePresto(t *testing.T) *httptest.Server {
	t.Helper()
	rec, err := os.ReadFile("testdata/presto-0.296-row-response.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(rec, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "nextUri")
	body, _ := json.Marshal(doc)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Trino-") {
				http.Error(w, "Trino header "+k, http.StatusBadRequest)
				return
			}
		}
		if r.Method == http.MethodPost && r.Header.Get("X-Presto-User") == "" {
			http.Error(w, "no X-Presto-User", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			// Queued: the data comes from the next URI, as from PrestoDB.
			fmt.Fprintf(w, `{"id":"q1","infoUri":"%s/ui","nextUri":"%s/v1/statement/executing/q1/1","stats":{"state":"QUEUED"}}`, srv.URL, srv.URL)
			return
		}
		w.Write(body)
	}))
	return srv
}

func TestPrestoRecordedResponse(t *testing.T) {
	srv := fakePresto(t)
	defer srv.Close()
	db, err := sql.Open("trino", strings.Replace(srv.URL, "http://", "http://liminal@", 1)+"?custom_client="+prestoClient)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT anything")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	types := make([]sqlType, len(cols))
	ct, _ := rows.ColumnTypes()
	for i := range types {
		// The client's view of the rewritten signature.
		if types[i], err = parseType(strings.ToLower(ct[i].DatabaseTypeName())); err != nil {
			t.Fatalf("column %s: %v", cols[i], err)
		}
	}
	if got := strings.Join(cols, ","); got != "r,arr,ts,m,nested,n" {
		t.Fatalf("columns %s (%v)", got, rows.Err())
	}
	// Read through the Arrow conversion with the types PrestoDB printed.
	printed := []string{"row(a integer,b varchar)", "array(decimal(3,2))", "timestamp", "map(varchar(1),integer)", "row(o row(d date))", "integer"}
	for i, p := range printed {
		types[i], _ = parseType(p)
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		t.Fatalf("no row: %v", rows.Err())
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"a":1,"b":"x"}`, `[1.5 (null)]`, "2024-01-01 01:02:03.456", `[{"key":"k","value":1}]`, `{"o":{"d":"2024-01-02"}}`, "42"}
	for i, ty := range types {
		b := array.NewBuilder(mem, arrowType(ty))
		if err := appendValue(b, ty, vals[i]); err != nil {
			t.Fatalf("column %s: %v", cols[i], err)
		}
		a := b.NewArray()
		got := a.ValueStr(0)
		if i == 1 {
			got = strings.ReplaceAll(a.String(), "[[", "[")
			got = strings.ReplaceAll(got, "]]", "]")
		}
		if i == 2 {
			got = strings.Replace(strings.TrimSuffix(got, "Z"), "T", " ", 1)
		}
		if got != want[i] {
			t.Errorf("column %s = %s, want %s", cols[i], got, want[i])
		}
		a.Release()
		b.Release()
	}
}

func TestRewritePrestoJSON(t *testing.T) {
	in := `{"id":"q","columns":[{"name":"r","type":"row(a integer,b varchar)","typeSignature":{"rawType":"row","typeArguments":[],"literalArguments":["a","b"],"arguments":[{"kind":"NAMED_TYPE_SIGNATURE","value":{"fieldName":{"name":"a","delimited":false},"typeSignature":"integer"}},{"kind":"NAMED_TYPE_SIGNATURE","value":{"fieldName":{"name":"b","delimited":false},"typeSignature":"varchar"}}]}},{"name":"d","type":"decimal(10,2)","typeSignature":{"rawType":"decimal","arguments":[{"kind":"LONG_LITERAL","value":10},{"kind":"LONG_LITERAL","value":2}]}},{"name":"e","type":"enum","typeSignature":{"rawType":"enum","arguments":[{"kind":"LONG_ENUM","value":{}}]}}],"data":[["[ 1, \"x\" ]","1.50",null]]}`
	out, err := rewritePrestoJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{`"kind":"NAMED_TYPE"`, `"typeSignature":{"arguments":[],"rawType":"integer"}`, `"kind":"LONG","value":10`, `"data":[[[1,"x"],"1.50",null]]`} {
		if !strings.Contains(s, want) {
			t.Errorf("rewritten JSON lacks %s:\n%s", want, s)
		}
	}
	for _, gone := range []string{"LONG_LITERAL", "SIGNATURE", "LONG_ENUM", "delimited", "typeArguments"} {
		if strings.Contains(s, gone) {
			t.Errorf("rewritten JSON still has %s:\n%s", gone, s)
		}
	}
	// Documents without columns pass through unchanged.
	if out, _ := rewritePrestoJSON([]byte(`{"id":"q","stats":{}}`)); string(out) != `{"id":"q","stats":{}}` {
		t.Errorf("got %s", out)
	}
}

// TestUnreachable: a refused connection is a transient error that names
// the host and never shows the password, which Describe hides too.
func TestUnreachable(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, scheme := range []string{"trino", "presto"} {
		s, err := Open(context.Background(), connectors.SourceConfig{Name: "x", Secret: secret,
			URI: scheme + "://bob@127.0.0.1:1/tpch/tiny?table=orders&retry_timeout=300ms"})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.Describe(), secret) {
			t.Errorf("Describe shows the password: %s", s.Describe())
		}
		_, err = s.Schema(context.Background())
		if err == nil {
			t.Fatal("no error")
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows the password: %v", err)
		}
		if !errors_Is(err, connectors.ErrTransient) {
			t.Errorf("%s: error %v is not transient", scheme, err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("error does not name the server: %v", err)
		}
		if _, err := s.Read(context.Background(), partition.Split{ID: "a"}, nil); err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("Read: %v", err)
		}
		s.Close()
	}
}
