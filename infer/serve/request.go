package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// httpError is an error answered with a status code.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) *httpError {
	return &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// v2Request is an Open Inference Protocol inference request.
type v2Request struct {
	ID      string     `json:"id"`
	Inputs  []v2Tensor `json:"inputs"`
	Outputs []struct {
		Name string `json:"name"`
	} `json:"outputs"`
}

type v2Tensor struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data"`
}

// v1Request is the plain JSON predict request.
type v1Request struct {
	Instances json.RawMessage `json:"instances"`
}

func (m *model) newColumns(n int) []column {
	cols := make([]column, len(m.fams))
	for i, f := range m.fams {
		cols[i] = newColumn(f, m.mem, n)
	}
	return cols
}

func releaseColumns(cols []column) {
	for _, c := range cols {
		if c != nil {
			c.release()
		}
	}
}

// finish turns the builders into arrays (the caller releases them).
func finish(cols []column) []arrow.Array {
	out := make([]arrow.Array, len(cols))
	for i, c := range cols {
		out[i] = c.build()
		c.release()
	}
	return out
}

// checkDatatype reports whether a tensor declared as dt can feed an input of
// family fam: numbers and booleans feed numeric inputs, BYTES feeds strings.
func checkDatatype(dt string, fam int) error {
	switch dt {
	case "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64":
		if fam == famString {
			return fmt.Errorf("datatype %s, but the model input is BYTES (strings)", dt)
		}
	case "BYTES":
		if fam != famString {
			return fmt.Errorf("datatype BYTES, but the model input is numeric")
		}
	case "":
		return fmt.Errorf("datatype is missing (want %s)", famDatatype(fam))
	default:
		return fmt.Errorf("unknown datatype %q (want BOOL, INT8..INT64, UINT8..UINT64, FP16, FP32, FP64 or BYTES)", dt)
	}
	return nil
}

func famDatatype(fam int) string {
	switch fam {
	case famFloat32:
		return "FP32"
	case famFloat64:
		return "FP64"
	case famInt64:
		return "INT64"
	case famBool:
		return "BOOL"
	}
	return "BYTES"
}

// decodeV2 builds the model's input columns from an inference request:
// either one input per feature (shape [N] or [N, 1]) or a single input of
// shape [N, F] whose columns are the features in model order.
func (m *model) decodeV2(req *v2Request) ([]arrow.Array, int, *httpError) {
	nf := len(m.features)
	if len(req.Inputs) == 0 {
		return nil, 0, badRequest("no inputs: send one input per model feature (%s) or one input of shape [N, %d]", m.featureList(), nf)
	}
	if len(req.Inputs) == 1 {
		in := &req.Inputs[0]
		_, isFeature := m.index[in.Name]
		if len(in.Shape) == 2 && in.Shape[1] == int64(nf) && !(nf == 1 && isFeature) {
			return m.decodeMatrix(in)
		}
		if !isFeature && nf > 1 {
			return nil, 0, badRequest("input %q with shape %v is neither a model feature nor of shape [N, %d] (model features: %s)", in.Name, in.Shape, nf, m.featureList())
		}
	}
	cols := make([]column, nf)
	n := -1
	for i := range req.Inputs {
		in := &req.Inputs[i]
		idx, ok := m.index[in.Name]
		if !ok {
			releaseColumns(cols)
			return nil, 0, badRequest("unknown input %q (model features: %s)", in.Name, m.featureList())
		}
		if cols[idx] != nil {
			releaseColumns(cols)
			return nil, 0, badRequest("input %q appears twice", in.Name)
		}
		if len(in.Shape) == 0 || len(in.Shape) > 2 || (len(in.Shape) == 2 && in.Shape[1] != 1) || in.Shape[0] < 0 {
			releaseColumns(cols)
			return nil, 0, badRequest("input %q: shape %v, want [N] or [N, 1] (one value per row)", in.Name, in.Shape)
		}
		if e := fits(in, in.Shape[0], 1); e != nil {
			releaseColumns(cols)
			return nil, 0, e
		}
		rows := int(in.Shape[0])
		if n >= 0 && rows != n {
			releaseColumns(cols)
			return nil, 0, badRequest("input %q has %d rows, earlier inputs have %d", in.Name, rows, n)
		}
		n = rows
		if err := checkDatatype(in.Datatype, m.fams[idx]); err != nil {
			releaseColumns(cols)
			return nil, 0, badRequest("input %q: %v", in.Name, err)
		}
		c := newColumn(m.fams[idx], m.mem, rows)
		cols[idx] = c
		k := 0
		err := flatten(in.Data, func(kind int, tok []byte) error {
			if k >= rows {
				return fmt.Errorf("more than %d values", rows)
			}
			if err := c.add(kind, tok); err != nil {
				return fmt.Errorf("row %d: %v", k, err)
			}
			k++
			return nil
		})
		if err == nil && k != rows {
			err = fmt.Errorf("shape %v needs %d values, data has %d", in.Shape, rows, k)
		}
		if err != nil {
			releaseColumns(cols)
			return nil, 0, badRequest("input %q: %v", in.Name, err)
		}
	}
	var missing []string
	for i, c := range cols {
		if c == nil {
			missing = append(missing, fmt.Sprintf("%q", m.features[i]))
		}
	}
	if len(missing) > 0 {
		releaseColumns(cols)
		return nil, 0, badRequest("missing input for model feature %s (send one input per feature, or one input of shape [N, %d])", strings.Join(missing, ", "), nf)
	}
	return finish(cols), n, nil
}

// fits refuses a shape of rows × width values that the input's data cannot
// hold (every value takes at least one byte and a separator), before any
// column is allocated for it: the shape is the client's claim, the data
// what it sent (an 80-byte request claiming 10^10 rows killed the server).
func fits(in *v2Tensor, rows, width int64) *httpError {
	most := int64(len(in.Data)+1) / 2
	if rows < 0 || width <= 0 || rows > most/width {
		return badRequest("input %q: shape %v needs %d values; its data can hold at most %d", in.Name, in.Shape, satMul(rows, width), most)
	}
	return nil
}

// satMul is a*b, or the largest int64 when that overflows.
func satMul(a, b int64) int64 {
	if a > 0 && b > 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// decodeMatrix reads a single [N, F] input, row-major.
func (m *model) decodeMatrix(in *v2Tensor) ([]arrow.Array, int, *httpError) {
	nf := len(m.features)
	rows := in.Shape[0]
	if rows < 0 {
		return nil, 0, badRequest("input %q: shape %v, want [N, %d]", in.Name, in.Shape, nf)
	}
	for _, f := range m.fams {
		if err := checkDatatype(in.Datatype, f); err != nil {
			return nil, 0, badRequest("input %q: %v", in.Name, err)
		}
	}
	if e := fits(in, rows, int64(nf)); e != nil {
		return nil, 0, e
	}
	total := int(rows) * nf
	cols := m.newColumns(int(rows))
	k := 0
	err := flatten(in.Data, func(kind int, tok []byte) error {
		if k >= total {
			return fmt.Errorf("more than %d values", total)
		}
		j := k % nf
		if err := cols[j].add(kind, tok); err != nil {
			return fmt.Errorf("row %d, feature %q: %v", k/nf, m.features[j], err)
		}
		k++
		return nil
	})
	if err == nil && k != total {
		err = fmt.Errorf("shape %v needs %d values, data has %d", in.Shape, total, k)
	}
	if err != nil {
		releaseColumns(cols)
		return nil, 0, badRequest("input %q: %v", in.Name, err)
	}
	return finish(cols), int(rows), nil
}

// decodeV1 builds the input columns from {"instances": [...]}: each
// instance an object keyed by feature name (a missing key or null is a
// missing value) or a list of values in feature order.
func (m *model) decodeV1(raw json.RawMessage) ([]arrow.Array, int, *httpError) {
	s := &scanner{b: raw}
	if s.peek() != '[' {
		return nil, 0, badRequest(`want {"instances": [...]}: a list of objects {"feature": value} or of lists of %d values in feature order`, len(m.features))
	}
	s.i++
	nf := len(m.features)
	cols := m.newColumns(0)
	fail := func(format string, args ...any) ([]arrow.Array, int, *httpError) {
		releaseColumns(cols)
		return nil, 0, badRequest(format, args...)
	}
	set := make([]bool, nf)
	row := 0
	if s.peek() == ']' {
		return finish(cols), 0, nil
	}
	for {
		switch s.peek() {
		case '{':
			s.i++
			clear(set)
			if s.peek() != '}' {
				for {
					_, ktok := s.scalar()
					s.ws()
					s.i++ // ':'
					var idx int
					var ok bool
					key := ktok[1 : len(ktok)-1]
					if bytes.IndexByte(key, '\\') >= 0 {
						k, _ := unquote(ktok)
						idx, ok = m.index[k]
					} else {
						idx, ok = m.index[string(key)]
					}
					if !ok {
						return fail("instance %d: unknown feature %s (model features: %s)", row, ktok, m.featureList())
					}
					if set[idx] {
						return fail("instance %d: feature %s appears twice", row, ktok)
					}
					set[idx] = true
					if c := s.peek(); c == '[' || c == '{' {
						return fail("instance %d: feature %s: want a single value", row, ktok)
					}
					if err := cols[idx].add(s.scalar()); err != nil {
						return fail("instance %d: feature %s: %v", row, ktok, err)
					}
					if !s.comma() {
						break
					}
				}
			}
			s.i++ // '}'
			for j, ok := range set {
				if !ok {
					cols[j].appendNull()
				}
			}
		case '[':
			s.i++
			j := 0
			if s.peek() != ']' {
				for {
					if j >= nf {
						return fail("instance %d: more than %d values (model features: %s)", row, nf, m.featureList())
					}
					if c := s.peek(); c == '[' || c == '{' {
						return fail("instance %d: value %d: want a single value", row, j)
					}
					if err := cols[j].add(s.scalar()); err != nil {
						return fail("instance %d: feature %q: %v", row, m.features[j], err)
					}
					j++
					if !s.comma() {
						break
					}
				}
			}
			s.i++ // ']'
			if j != nf {
				return fail("instance %d has %d values, the model has %d features (%s)", row, j, nf, m.featureList())
			}
		default:
			return fail("instance %d: want an object {\"feature\": value} or a list of %d values", row, nf)
		}
		row++
		if !s.comma() {
			break
		}
	}
	return finish(cols), row, nil
}

// featureList names the model's features for messages (the first 20).
func (m *model) featureList() string {
	const max = 20
	if len(m.features) <= max {
		return strings.Join(m.features, ", ")
	}
	return strings.Join(m.features[:max], ", ") + fmt.Sprintf(", ... %d more", len(m.features)-max)
}
