package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/liminal-data/liminal/infer"
)

func openModel(t testing.TB, path string) infer.Model {
	t.Helper()
	m, err := infer.Open(infer.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func start(t testing.TB, models map[string]infer.Model, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(models, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		_ = s.Shutdown(context.Background())
	})
	return s, ts.URL
}

// do sends a request and decodes the JSON answer into a generic value.
func do(t testing.TB, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, url, err, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	return resp.StatusCode, v
}

func linear(age, income float64) float64 { return 0.1 + 0.5*age - 1.25*income }

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// outputs maps v2 output names to their data.
func outputs(t testing.TB, v map[string]any) map[string][]any {
	t.Helper()
	outs, ok := v["outputs"].([]any)
	if !ok {
		t.Fatalf("no outputs in %v", v)
	}
	res := map[string][]any{}
	for _, o := range outs {
		o := o.(map[string]any)
		data := o["data"].([]any)
		shape := o["shape"].([]any)
		if len(shape) != 1 || int(shape[0].(float64)) != len(data) {
			t.Errorf("output %v: shape %v for %d values", o["name"], shape, len(data))
		}
		res[o["name"].(string)] = data
	}
	return res
}

func TestMetadataAndHealth(t *testing.T) {
	_, url := start(t, map[string]infer.Model{
		"lin": openModel(t, "testdata/linear.json"),
		"xgb": openModel(t, "../testdata/xgboost/multi_softprob.model.json"),
	}, Options{Version: "1.2.3"})
	for _, p := range []string{"/v2/health/live", "/v2/health/ready", "/v2/models/lin/ready"} {
		if code, _ := do(t, "GET", url+p, ""); code != 200 {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	code, v := do(t, "GET", url+"/v2", "")
	if code != 200 || v["name"] != "liminal" || v["version"] != "1.2.3" {
		t.Errorf("server metadata: %d %v", code, v)
	}
	code, v = do(t, "GET", url+"/v2/models/lin", "")
	if code != 200 || v["name"] != "lin" {
		t.Fatalf("model metadata: %d %v", code, v)
	}
	in := v["inputs"].([]any)
	if len(in) != 2 || in[0].(map[string]any)["name"] != "age" || in[1].(map[string]any)["datatype"] != "FP64" ||
		fmt.Sprint(in[0].(map[string]any)["shape"]) != "[-1]" {
		t.Errorf("inputs %v", in)
	}
	out := v["outputs"].([]any)
	if len(out) != 1 || out[0].(map[string]any)["name"] != "prediction" || out[0].(map[string]any)["datatype"] != "FP64" {
		t.Errorf("outputs %v", out)
	}
	_, v = do(t, "GET", url+"/v2/models/xgb", "")
	in, out = v["inputs"].([]any), v["outputs"].([]any)
	if len(in) != 6 || in[0].(map[string]any)["datatype"] != "FP32" || len(out) != 4 ||
		out[0].(map[string]any)["datatype"] != "INT64" || out[3].(map[string]any)["name"] != "probability_2" {
		t.Errorf("xgb metadata %v", v)
	}
	if code, v := do(t, "GET", url+"/v2/models/nope", ""); code != 404 || !strings.Contains(v["error"].(string), `"nope"`) {
		t.Errorf("unknown model: %d %v", code, v)
	}
	if code, _ := do(t, "GET", url+"/v2/models/nope/ready", ""); code != 404 {
		t.Errorf("unknown model ready: %d", code)
	}
}

func TestV2InferPerFeature(t *testing.T) {
	for _, delay := range []time.Duration{-1, 0} {
		t.Run(fmt.Sprint("delay", delay), func(t *testing.T) {
			_, url := start(t, map[string]infer.Model{"lin": openModel(t, "testdata/linear.json")}, Options{MaxDelay: delay})
			body := `{"id": "r-1", "inputs": [
				{"name": "income", "shape": [3, 1], "datatype": "FP32", "data": [[1], [2.5], [null]]},
				{"name": "age", "shape": [3], "datatype": "INT64", "data": [10, 20, 30]}]}`
			code, v := do(t, "POST", url+"/v2/models/lin/infer", body)
			if code != 200 || v["model_name"] != "lin" || v["id"] != "r-1" {
				t.Fatalf("%d %v", code, v)
			}
			p := outputs(t, v)["prediction"]
			if len(p) != 3 || p[0].(float64) != linear(10, 1) || p[1].(float64) != linear(20, 2.5) || p[2] != nil {
				t.Errorf("predictions %v", p)
			}
			// Requested outputs only; zero rows.
			code, v = do(t, "POST", url+"/v2/models/lin/infer", `{"inputs": [
				{"name": "age", "shape": [0], "datatype": "FP64", "data": []},
				{"name": "income", "shape": [0], "datatype": "FP64", "data": []}], "outputs": [{"name": "prediction"}]}`)
			if code != 200 || len(outputs(t, v)["prediction"]) != 0 {
				t.Errorf("zero rows: %d %v", code, v)
			}
		})
	}
}

func TestV2InferMatrix(t *testing.T) {
	_, url := start(t, map[string]infer.Model{"lin": openModel(t, "testdata/linear.json")}, Options{})
	for _, data := range []string{`[[1, 2], [3, 4], [null, 1]]`, `[1, 2, 3, 4, null, 1]`} {
		code, v := do(t, "POST", url+"/v2/models/lin/infer",
			`{"inputs": [{"name": "input-0", "shape": [3, 2], "datatype": "FP64", "data": `+data+`}]}`)
		if code != 200 {
			t.Fatalf("%d %v", code, v)
		}
		p := outputs(t, v)["prediction"]
		if len(p) != 3 || p[0].(float64) != linear(1, 2) || p[1].(float64) != linear(3, 4) || p[2] != nil {
			t.Errorf("data %s: predictions %v", data, p)
		}
		if _, ok := v["id"]; ok {
			t.Errorf("id without one in the request: %v", v)
		}
	}
}

func TestV1Predict(t *testing.T) {
	_, url := start(t, map[string]infer.Model{"lin": openModel(t, "testdata/linear.json")}, Options{})
	code, v := do(t, "POST", url+"/v1/models/lin:predict",
		`{"instances": [{"age": 10, "income": 1}, {"income": 2, "age": 4.5}, {"age": 1}, {"age": null, "income": 3}, {}]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	p := v["predictions"].([]any)
	if len(p) != 5 || p[0].(float64) != linear(10, 1) || p[1].(float64) != linear(4.5, 2) || p[2] != nil || p[3] != nil || p[4] != nil {
		t.Errorf("objects: %v", p)
	}
	code, v = do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [[10, 1], [4.5, 2], [null, 1]]}`)
	p = v["predictions"].([]any)
	if code != 200 || len(p) != 3 || p[0].(float64) != linear(10, 1) || p[1].(float64) != linear(4.5, 2) || p[2] != nil {
		t.Errorf("arrays: %d %v", code, v)
	}
	code, v = do(t, "POST", url+"/v1/models/lin:predict", `{"instances": []}`)
	if code != 200 || len(v["predictions"].([]any)) != 0 {
		t.Errorf("empty: %d %v", code, v)
	}
}

func TestMulticlass(t *testing.T) {
	_, url := start(t, map[string]infer.Model{"sm": openModel(t, "testdata/softmax.json")}, Options{})
	code, v := do(t, "POST", url+"/v1/models/sm:predict", `{"instances": [{"x": 3, "y": 0}, [0, 3], {"x": -2, "y": -2}, {"x": 1}]}`)
	if code != 200 {
		t.Fatalf("%d %v", code, v)
	}
	p := v["predictions"].([]any)
	want := []float64{0, 1, 2}
	for i, w := range want {
		row := p[i].(map[string]any)
		sum := row["probability_0"].(float64) + row["probability_1"].(float64) + row["probability_2"].(float64)
		if row["prediction"].(float64) != w || !near(sum, 1, 1e-9) {
			t.Errorf("instance %d: %v", i, row)
		}
	}
	if row := p[3].(map[string]any); row["prediction"] != nil || row["probability_0"] != nil {
		t.Errorf("missing y: %v", row)
	}
	code, v = do(t, "POST", url+"/v2/models/sm/infer", `{"inputs": [{"name": "m", "shape": [1, 2], "datatype": "FP64", "data": [[3, 0]]}]}`)
	outs := outputs(t, v)
	if code != 200 || len(outs) != 4 || outs["prediction"][0].(float64) != 0 || outs["probability_0"][0].(float64) < 0.5 {
		t.Errorf("v2: %d %v", code, v)
	}
}

// readFixture reads a fixture CSV of numbers ("nan" for missing).
func readFixture(t testing.TB, path string) (header []string, rows [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if header == nil {
			header = fields
			continue
		}
		row := make([]float64, len(fields))
		for i, s := range fields {
			if row[i], err = strconv.ParseFloat(s, 64); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		rows = append(rows, row)
	}
	return header, rows
}

// jsonRow writes a fixture row as a JSON list, NaN as null.
func jsonRow(b *bytes.Buffer, row []float64) {
	b.WriteByte('[')
	for i, v := range row {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case math.IsNaN(v):
			b.WriteString("null")
		case math.IsInf(v, 0): // JSON has no infinity; 1e999 overflows to it
			b.WriteString(strings.Replace(strconv.FormatFloat(math.Copysign(1, v), 'g', -1, 64), "1", "1e999", 1))
		default:
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	b.WriteByte(']')
}

// TestReferenceFixtures: predictions over HTTP equal the reference
// predictions of XGBoost and LightGBM (p0..pK), v2 matrix and v1 arrays.
func TestReferenceFixtures(t *testing.T) {
	cases := []struct{ dir, name, ext string }{
		{"xgboost", "binary_logistic", ".model.json"},
		{"xgboost", "reg_squarederror", ".model.json"},
		{"xgboost", "multi_softprob", ".model.json"},
		{"lightgbm", "binary_nan", ".model.txt"},
		{"lightgbm", "multiclass", ".model.txt"},
	}
	models := map[string]infer.Model{}
	for _, c := range cases {
		models[c.name] = openModel(t, filepath.Join("../testdata", c.dir, c.name+c.ext))
	}
	_, url := start(t, models, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := filepath.Join("../testdata", c.dir, c.name)
			header, in := readFixture(t, base+".input.csv")
			eh, exp := readFixture(t, base+".expected.csv")
			var k int // probability columns p0..pK
			for _, h := range eh {
				if strings.HasPrefix(h, "p") {
					k++
				}
			}
			var m, inst bytes.Buffer
			for i, row := range in {
				if i > 0 {
					m.WriteByte(',')
					inst.WriteByte(',')
				}
				jsonRow(&m, row)
				jsonRow(&inst, row)
			}
			code, v := do(t, "POST", url+"/v2/models/"+c.name+"/infer",
				fmt.Sprintf(`{"inputs": [{"name": "x", "shape": [%d, %d], "datatype": "FP32", "data": [%s]}]}`, len(in), len(header), m.String()))
			if code != 200 {
				t.Fatalf("v2: %d %v", code, v)
			}
			outs := outputs(t, v)
			code, v1 := do(t, "POST", url+"/v1/models/"+c.name+":predict", `{"instances": [`+inst.String()+`]}`)
			if code != 200 {
				t.Fatalf("v1: %d %v", code, v1)
			}
			preds := v1["predictions"].([]any)
			for i, row := range exp {
				for j := 0; j < k; j++ {
					var got2, got1 float64
					if k == 1 {
						got2 = outs["prediction"][i].(float64)
						got1 = preds[i].(float64)
					} else {
						col := "probability_" + strconv.Itoa(j)
						got2 = outs[col][i].(float64)
						got1 = preds[i].(map[string]any)[col].(float64)
					}
					if !near(got2, row[j], 1e-6) || !near(got1, row[j], 1e-6) {
						t.Fatalf("row %d p%d: v2 %v, v1 %v, want %v", i, j, got2, got1, row[j])
					}
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	_, url := start(t, map[string]infer.Model{
		"lin": openModel(t, "testdata/linear.json"),
		"str": openModel(t, "testdata/strict.json"),
	}, Options{MaxBodyBytes: 4096})
	infer2 := url + "/v2/models/lin/infer"
	predict := url + "/v1/models/lin:predict"
	big := `{"instances": [` + strings.Repeat(`[1, 2],`, 1000) + `[1, 2]]}`
	tests := []struct {
		name, method, url, body string
		code                    int
		want                    string
	}{
		{"unknown model v2", "POST", url + "/v2/models/nope/infer", `{}`, 404, `unknown model "nope"`},
		{"unknown model v1", "POST", url + "/v1/models/nope:predict", `{}`, 404, `unknown model "nope"`},
		{"v1 without :predict", "POST", url + "/v1/models/lin", `{}`, 404, "predict"},
		{"unknown path", "GET", url + "/v3/things", ``, 404, "no endpoint"},
		{"wrong method", "GET", infer2, ``, 405, "POST"},
		{"bad JSON v2", "POST", infer2, `{"inputs": [`, 400, "invalid JSON"},
		{"bad JSON v1", "POST", predict, `{"instances": [1,}`, 400, "invalid JSON"},
		{"no inputs", "POST", infer2, `{"inputs": []}`, 400, "no inputs"},
		{"unknown input", "POST", infer2, `{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]},
			{"name": "salary", "shape": [1], "datatype": "FP64", "data": [1]}]}`, 400, `unknown input "salary"`},
		{"single unknown input", "POST", infer2, `{"inputs": [{"name": "zzz", "shape": [1], "datatype": "FP64", "data": [1]}]}`, 400, `"zzz"`},
		{"wrong shape", "POST", infer2, `{"inputs": [{"name": "age", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]},
			{"name": "income", "shape": [1], "datatype": "FP64", "data": [1]}]}`, 400, "shape"},
		{"matrix wrong width", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}`, 400, "[N, 2]"},
		{"shape and data disagree", "POST", infer2, `{"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}`, 400, "needs 4 values"},
		{"too much data", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2, 3]}]}`, 400, "more than 2"},
		{"row counts differ", "POST", infer2, `{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]},
			{"name": "income", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}`, 400, "rows"},
		{"wrong datatype", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "BYTES", "data": ["a", "b"]}]}`, 400, "BYTES"},
		{"unknown datatype", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP128", "data": [1, 2]}]}`, 400, "FP128"},
		{"string value", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, "2"]}]}`, 400, "want a number"},
		{"object in data", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [{"a": 1}]}]}`, 400, "object"},
		{"missing feature", "POST", infer2, `{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]}]}`, 400, `missing input for model feature "income"`},
		{"duplicate input", "POST", infer2, `{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]},
			{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]}]}`, 400, "twice"},
		{"unknown output", "POST", infer2, `{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}], "outputs": [{"name": "score"}]}`, 400, `unknown output "score"`},
		{"no instances", "POST", predict, `{"rows": []}`, 400, "instances"},
		{"instances not a list", "POST", predict, `{"instances": {"age": 1}}`, 400, "instances"},
		{"v1 unknown feature", "POST", predict, `{"instances": [{"age": 1, "incme": 2}]}`, 400, `unknown feature "incme"`},
		{"v1 arity", "POST", predict, `{"instances": [[1, 2], [1]]}`, 400, "instance 1 has 1 values"},
		{"v1 too many", "POST", predict, `{"instances": [[1, 2, 3]]}`, 400, "more than 2"},
		{"v1 scalar instance", "POST", predict, `{"instances": [1, 2]}`, 400, "instance 0"},
		{"v1 nested value", "POST", predict, `{"instances": [{"age": [1]}]}`, 400, "single value"},
		{"v1 string", "POST", predict, `{"instances": [{"age": "old"}]}`, 400, `feature "age": want a number`},
		{"body too large", "POST", predict, big, 413, "larger than 4096"},
		{"model failure", "POST", url + "/v1/models/str:predict", `{"instances": [[null]]}`, 500, "model failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, v := do(t, tc.method, tc.url, tc.body)
			msg, _ := v["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %q, want %d and %q", code, msg, tc.code, tc.want)
			}
		})
	}
}

// countingModel wraps a model, counting Predict calls and the rows of
// each; delay slows each call down.
type countingModel struct {
	infer.Model
	calls atomic.Int64
	rows  atomic.Int64
	delay time.Duration
	fail  error
	gate  chan struct{} // when set, Predict waits for it to close
	hold  func()        // when set, the first Predict calls it first
	once  sync.Once
	enter chan struct{} // when set, Predict signals on it first
}

func (m *countingModel) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	m.calls.Add(1)
	m.rows.Add(in.NumRows())
	if m.hold != nil {
		m.once.Do(m.hold)
	}
	if m.enter != nil {
		m.enter <- struct{}{}
	}
	if m.gate != nil {
		<-m.gate
	}
	if m.delay > 0 {
		select {
		case <-time.After(m.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if m.fail != nil {
		return nil, m.fail
	}
	return m.Model.Predict(ctx, in)
}

// TestMicroBatching: 64 concurrent requests are scored with far fewer
// Predict calls, and each request gets its own rows back, in order.
func TestMicroBatching(t *testing.T) {
	const clients = 64
	cm := &countingModel{Model: openModel(t, "testdata/linear.json")}
	srv, url := start(t, map[string]infer.Model{"lin": cm}, Options{MaxDelay: 5 * time.Millisecond, Workers: 1})
	// The first batch waits until every request is queued (so that a slow
	// machine that opens the connections one by one still batches).
	cm.hold = func() {
		deadline := time.Now().Add(10 * time.Second)
		for srv.models["lin"].enqueued.Load() < clients && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Go(func() {
			// Request c has c%3+1 rows: age = c*10+i, income = i.
			n := c%3 + 1
			var b strings.Builder
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"age": %d, "income": %d}`, c*10+i, i)
			}
			resp, err := http.Post(url+"/v1/models/lin:predict", "application/json", strings.NewReader(`{"instances": [`+b.String()+`]}`))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var v struct{ Predictions []float64 }
			if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
				errs <- fmt.Errorf("client %d: %d %v", c, resp.StatusCode, err)
				return
			}
			if len(v.Predictions) != n {
				errs <- fmt.Errorf("client %d: %d predictions for %d rows", c, len(v.Predictions), n)
				return
			}
			for i, p := range v.Predictions {
				if want := linear(float64(c*10+i), float64(i)); p != want {
					errs <- fmt.Errorf("client %d row %d: %v, want %v", c, i, p, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls := cm.calls.Load()
	t.Logf("%d requests, %d Predict calls, %d rows", clients, calls, cm.rows.Load())
	if calls > 4 || srv.Predicts("lin") != calls {
		t.Errorf("%d Predict calls for %d concurrent requests: not batched", calls, clients)
	}
	if want := int64(22*1 + 21*2 + 21*3); cm.rows.Load() != want {
		t.Errorf("%d rows scored, want %d", cm.rows.Load(), want)
	}
}

// TestBatchLimits: a request larger than MaxBatchRows runs alone and
// batches never exceed MaxBatchRows.
func TestBatchLimits(t *testing.T) {
	cm := &countingModel{Model: openModel(t, "testdata/linear.json")}
	var maxRows atomic.Int64
	wrapped := &maxRowsModel{countingModel: cm, max: &maxRows}
	_, url := start(t, map[string]infer.Model{"lin": wrapped}, Options{MaxBatchRows: 4, MaxDelay: 10 * time.Millisecond})
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Go(func() {
			n := 1 + c%3
			if c == 0 {
				n = 10
			}
			var b strings.Builder
			for i := range n {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `[%d, 1]`, c+i)
			}
			code, v := do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [`+b.String()+`]}`)
			p, _ := v["predictions"].([]any)
			if code != 200 || len(p) != n || p[n-1].(float64) != linear(float64(c+n-1), 1) {
				t.Errorf("client %d: %d %v", c, code, v)
			}
		})
	}
	wg.Wait()
	if m := maxRows.Load(); m != 10 {
		t.Errorf("largest batch %d rows, want 10 (the big request alone)", m)
	}
}

type maxRowsModel struct {
	*countingModel
	max *atomic.Int64
}

func (m *maxRowsModel) Predict(ctx context.Context, in arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := in.NumRows()
	if n > 4 && n != 10 {
		return nil, fmt.Errorf("batch of %d rows", n)
	}
	for {
		old := m.max.Load()
		if n <= old || m.max.CompareAndSwap(old, n) {
			break
		}
	}
	return m.countingModel.Predict(ctx, in)
}

// TestBatchError: a failing Predict fails every request of its batch with
// 500; a slow one times out with 504.
func TestBatchError(t *testing.T) {
	cm := &countingModel{Model: openModel(t, "testdata/linear.json"), fail: errors.New("boom")}
	_, url := start(t, map[string]infer.Model{"lin": cm}, Options{MaxDelay: 20 * time.Millisecond})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			code, v := do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [[1, 2]]}`)
			if code != 500 || !strings.Contains(v["error"].(string), "boom") {
				t.Errorf("%d %v", code, v)
			}
		})
	}
	wg.Wait()
	if c := cm.calls.Load(); c >= 8 {
		t.Errorf("%d calls: not batched", c)
	}
	slow := &countingModel{Model: openModel(t, "testdata/linear.json"), delay: time.Second}
	for _, delay := range []time.Duration{-1, 0} {
		_, url := start(t, map[string]infer.Model{"lin": slow}, Options{MaxDelay: delay, RequestTimeout: 50 * time.Millisecond})
		if code, v := do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [[1, 2]]}`); code != 504 {
			t.Errorf("slow model (delay %v): %d %v", delay, code, v)
		}
	}
}

// TestShutdown: Shutdown turns readiness to 503 and refuses new requests
// while an in-flight one completes; it returns once that one has.
func TestShutdown(t *testing.T) {
	for _, delay := range []time.Duration{-1, 0} {
		t.Run(fmt.Sprint("delay", delay), func(t *testing.T) {
			cm := &countingModel{Model: openModel(t, "testdata/linear.json"), gate: make(chan struct{}), enter: make(chan struct{}, 1)}
			srv, url := start(t, map[string]infer.Model{"lin": cm}, Options{MaxDelay: delay})
			type answer struct {
				code int
				v    map[string]any
			}
			inflight := make(chan answer, 1)
			go func() {
				code, v := do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [[2, 1]]}`)
				inflight <- answer{code, v}
			}()
			<-cm.enter // the request is inside Predict
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(context.Background()) }()
			deadline := time.Now().Add(5 * time.Second)
			for {
				code, _ := do(t, "GET", url+"/v2/health/ready", "")
				if code == 503 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("readiness never turned 503")
				}
				time.Sleep(time.Millisecond)
			}
			if code, v := do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [[2, 1]]}`); code != 503 {
				t.Errorf("new request during shutdown: %d %v", code, v)
			}
			if code, _ := do(t, "GET", url+"/v2/models/lin/ready", ""); code != 503 {
				t.Errorf("model ready during shutdown: %d", code)
			}
			if code, _ := do(t, "GET", url+"/v2/health/live", ""); code != 200 {
				t.Errorf("live during shutdown: %d", code)
			}
			select {
			case err := <-shut:
				t.Fatalf("Shutdown returned (%v) before the in-flight request finished", err)
			case <-time.After(20 * time.Millisecond):
			}
			close(cm.gate)
			a := <-inflight
			if a.code != 200 || a.v["predictions"].([]any)[0].(float64) != linear(2, 1) {
				t.Errorf("in-flight request: %d %v", a.code, a.v)
			}
			select {
			case err := <-shut:
				if err != nil {
					t.Errorf("Shutdown: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Shutdown did not return")
			}
		})
	}
}

// TestShutdownTimeout: Shutdown gives up when its context ends first.
func TestShutdownTimeout(t *testing.T) {
	cm := &countingModel{Model: openModel(t, "testdata/linear.json"), gate: make(chan struct{}), enter: make(chan struct{}, 1)}
	srv, url := start(t, map[string]infer.Model{"lin": cm}, Options{})
	done := make(chan int, 1)
	go func() {
		code, _ := do(t, "POST", url+"/v1/models/lin:predict", `{"instances": [[2, 1]]}`)
		done <- code
	}()
	<-cm.enter
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown: %v", err)
	}
	close(cm.gate)
	if code := <-done; code != 200 {
		t.Errorf("in-flight request after a timed-out Shutdown: %d", code)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("no models accepted")
	}
	m := openModel(t, "testdata/linear.json")
	if _, err := New(map[string]infer.Model{"a/b": m}, Options{}); err == nil {
		t.Error("name with / accepted")
	}
	if _, err := New(map[string]infer.Model{"a": m}, Options{MaxBatchRows: -1}); err == nil {
		t.Error("negative option accepted")
	}
}
