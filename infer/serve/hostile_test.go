package serve

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/liminal-data/liminal/infer"
)

// TestHostileShapes: a request whose shape claims more values than its
// data holds is refused with 400 before anything is allocated for it, and
// the server keeps answering (an 80-byte request claiming 10^10 rows took
// the process down with a Go fatal "out of memory").
func TestHostileShapes(t *testing.T) {
	_, url := start(t, map[string]infer.Model{"lin": openModel(t, "testdata/linear.json")}, Options{})
	for name, body := range map[string]string{
		"matrix 1e10 rows": `{"inputs":[{"name":"x","shape":[10000000000,2],"datatype":"FP64","data":[1,2]}]}`,
		"matrix overflow":  `{"inputs":[{"name":"x","shape":[9223372036854775807,2],"datatype":"FP64","data":[1,2]}]}`,
		"feature 1e12":     `{"inputs":[{"name":"age","shape":[1000000000000],"datatype":"FP64","data":[1]},{"name":"income","shape":[1000000000000],"datatype":"FP64","data":[1]}]}`,
		"negative":         `{"inputs":[{"name":"x","shape":[-5,2],"datatype":"FP64","data":[]}]}`,
	} {
		code, v := do(t, "POST", url+"/v2/models/lin/infer", body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d (%v), want 400", name, code, v)
		}
	}
	if code, _ := do(t, "GET", url+"/v2/health/ready", ""); code != http.StatusOK {
		t.Fatalf("server not ready after hostile requests: %d", code)
	}
}

// TestJSONOnly: bodies that are not declared application/json are refused
// with 415, so that a web page cannot post to a local server without a
// CORS preflight.
func TestJSONOnly(t *testing.T) {
	_, url := start(t, map[string]infer.Model{"lin": openModel(t, "testdata/linear.json")}, Options{})
	body := `{"instances":[{"age":34,"income":52000}]}`
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "", "multipart/form-data; boundary=x"} {
		req, _ := http.NewRequest("POST", url+"/v1/models/lin:predict", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: status %d, want 415", ct, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest("POST", url+"/v1/models/lin:predict", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("application/json; charset=utf-8: status %d", resp.StatusCode)
	}
}

// FuzzDecode: the hand-written KServe v2 and v1 decoders never panic,
// never leak a column and never allocate past what the body can hold.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,null]]}]}`,
		`{"inputs":[{"name":"age","shape":[1],"datatype":"FP64","data":[1]},{"name":"income","shape":[1,1],"datatype":"INT64","data":[2]}]}`,
		`{"inputs":[{"name":"x","shape":[10000000000,2],"datatype":"FP64","data":[1,2]}]}`,
		`{"instances":[{"age":34,"income":52000},[1,2]]}`,
		`{"instances":[[1e308,-0.5],{"age":null}]}`,
	} {
		f.Add([]byte(s))
	}
	im, err := infer.Open(infer.Config{Path: "testdata/linear.json"})
	if err != nil {
		f.Fatal(err)
	}
	defer im.Close()
	s, err := New(map[string]infer.Model{"lin": im}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Shutdown(f.Context())
	base := s.models["lin"]
	f.Fuzz(func(t *testing.T, body []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		m := &model{name: base.name, m: base.m, features: base.features, index: base.index, fams: base.fams, req: base.req, mem: mem}
		var v2 v2Request
		if json.Unmarshal(body, &v2) == nil {
			if cols, _, e := m.decodeV2(&v2); e == nil {
				for _, c := range cols {
					c.Release()
				}
			}
		}
		var v1 struct {
			Instances json.RawMessage `json:"instances"`
		}
		if json.Unmarshal(body, &v1) == nil && v1.Instances != nil {
			if cols, _, e := m.decodeV1(v1.Instances); e == nil {
				for _, c := range cols {
					c.Release()
				}
			}
		}
		mem.AssertSize(t, 0)
	})
}
