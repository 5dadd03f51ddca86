package onnx

import (
	"errors"
	"strings"
	"testing"

	"github.com/liminal-data/liminal/infer"
)

// These tests need no runtime: they check the input and output rules of
// doc.go on declared shapes.

func tensor(name string, e elem, dims ...int64) valueInfo {
	return valueInfo{Name: name, Kind: kindTensor, Elem: e, ElemName: e.String(), Dims: dims}
}

func TestLayoutOutputs(t *testing.T) {
	x := []valueInfo{tensor("X", elemFloat, -1, 3)}
	cases := []struct {
		name string
		outs []valueInfo
		want string
	}{
		{"classifier", []valueInfo{tensor("label", elemInt64, -1), tensor("probabilities", elemFloat, -1, 3)},
			"prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64"},
		{"classifier reversed, string labels", []valueInfo{tensor("p", elemDouble, -1, 2), tensor("label", elemString, -1, 1)},
			"prediction:utf8,probability_0:float64,probability_1:float64"},
		{"regressor [N,1]", []valueInfo{tensor("variable", elemFloat, -1, 1)}, "prediction:float64"},
		{"regressor [N]", []valueInfo{tensor("y", elemDouble, -1)}, "prediction:float64"},
		{"softmax head", []valueInfo{tensor("output", elemFloat, -1, 4)},
			"prediction:int64,probability_0:float64,probability_1:float64,probability_2:float64,probability_3:float64"},
		{"int output alone", []valueInfo{tensor("cls", elemInt32, -1)}, "cls:int64"},
		{"several outputs", []valueInfo{tensor("a", elemFloat, -1, 2), tensor("b", elemBool, -1), tensor("c", elemFloat, -1, 1)},
			"a_0:float64,a_1:float64,b:bool,c:float64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := planLayout(x, c.outs, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := schemaString(l.out); got != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestLayoutErrors(t *testing.T) {
	x := []valueInfo{tensor("X", elemFloat, -1, 3)}
	y := []valueInfo{tensor("y", elemFloat, -1, 1)}
	cases := []struct {
		name     string
		ins      []valueInfo
		outs     []valueInfo
		features []string
		meta     string
		want     error
		msg      string
	}{
		{"zipmap", x, []valueInfo{tensor("label", elemInt64, -1), {Name: "output_probability", Kind: kindSequence}}, nil, "", infer.ErrUnsupported, "zipmap"},
		{"map output", x, []valueInfo{{Name: "m", Kind: kindMap}}, nil, "", infer.ErrUnsupported, "zipmap"},
		{"3-D output", x, []valueInfo{tensor("o", elemFloat, -1, 2, 2)}, nil, "", infer.ErrUnsupported, "[N,2,2]"},
		{"dynamic width", x, []valueInfo{tensor("o", elemFloat, -1, -1)}, nil, "", infer.ErrUnsupported, "width"},
		{"float16 output", x, []valueInfo{{Name: "o", Kind: kindTensor, Elem: elemOther, ElemName: "float16", Dims: []int64{-1}}}, nil, "", infer.ErrUnsupported, "float16"},
		{"no outputs", x, nil, nil, "", infer.ErrUnsupported, "no outputs"},
		{"no inputs", nil, y, nil, "", infer.ErrUnsupported, "no inputs"},
		{"int matrix", []valueInfo{tensor("X", elemInt64, -1, 3)}, y, nil, "", infer.ErrUnsupported, "matrices"},
		{"dynamic features", []valueInfo{tensor("X", elemFloat, -1, -1)}, y, nil, "", infer.ErrUnsupported, "fixed"},
		{"image input", []valueInfo{tensor("img", elemFloat, -1, 3, 224, 224)}, y, nil, "", infer.ErrUnsupported, "[N,3,224,224]"},
		{"batch disagreement", []valueInfo{tensor("a", elemFloat, 1, 1), tensor("b", elemFloat, 2, 1)}, y, nil, "", infer.ErrUnsupported, "batch"},
		{"wide column input", []valueInfo{tensor("a", elemFloat, -1, 1), tensor("b", elemFloat, -1, 2)}, y, nil, "", infer.ErrUnsupported, "one column"},
		{"bool column input", []valueInfo{tensor("a", elemFloat, -1, 1), tensor("b", elemBool, -1, 1)}, y, nil, "", infer.ErrUnsupported, "bool"},
		{"feature count", x, y, []string{"a", "b"}, "", infer.ErrBinding, "3 features"},
		{"column feature count", []valueInfo{tensor("a", elemFloat, -1, 1), tensor("b", elemFloat, -1)}, y, []string{"a"}, "", infer.ErrBinding, "2 inputs"},
		{"empty feature name", x, y, []string{"a", "", "c"}, "", infer.ErrBinding, "empty"},
		{"metadata count", x, y, nil, "a,b", infer.ErrCorrupt, "2 names for 3"},
		{"metadata duplicate", x, y, nil, "a,b,a", infer.ErrCorrupt, "twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := planLayout(c.ins, c.outs, c.features, c.meta)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
}

func TestLayoutInputs(t *testing.T) {
	y := []valueInfo{tensor("y", elemFloat, -1, 1)}
	l, err := planLayout([]valueInfo{tensor("X", elemDouble, 8, 2)}, y, nil, " a , b ")
	if err != nil {
		t.Fatal(err)
	}
	if got := schemaString(l.in); got != "a:float64,b:float64" || !l.matrix || l.batch != 8 {
		t.Fatalf("double matrix: %s matrix %v batch %d", got, l.matrix, l.batch)
	}
	// Config.Features wins over the metadata.
	l, err = planLayout([]valueInfo{tensor("X", elemFloat, -1, 2)}, y, []string{"p", "q"}, "a,b")
	if err != nil || schemaString(l.in) != "p:float32,q:float32" || l.batch != 0 {
		t.Fatalf("features: %v %v", l, err)
	}
	l, err = planLayout([]valueInfo{tensor("age", elemFloat, -1, 1), tensor("n", elemInt64, -1), tensor("s", elemString, -1, 1)}, y, nil, "ignored")
	if err != nil || schemaString(l.in) != "age:float32,n:int64,s:utf8" || l.matrix {
		t.Fatalf("columns: %v %v", l, err)
	}
	// A single 1-D input is one column named by the input.
	l, err = planLayout([]valueInfo{tensor("x", elemFloat, -1)}, y, nil, "")
	if err != nil || schemaString(l.in) != "x:float32" || l.matrix {
		t.Fatalf("1-D: %v %v", l, err)
	}
}

func FuzzFeatureNames(f *testing.F) {
	for _, s := range []string{"a,b,c", " a , b ", "a,,b", "a,a", "", ",", "x"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, meta string, nf int) {
		if nf < 0 || nf > 64 {
			return
		}
		names, err := parseFeatureNames(meta, nf)
		if err != nil {
			if !errors.Is(err, infer.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if len(names) != nf {
			t.Fatalf("%d names for %d", len(names), nf)
		}
		seen := map[string]bool{}
		for _, n := range names {
			if n == "" || n != strings.TrimSpace(n) || strings.Contains(n, ",") || seen[n] {
				t.Fatalf("bad name %q in %q", n, names)
			}
			seen[n] = true
		}
	})
}
