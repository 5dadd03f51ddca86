package onnx

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/liminal-data/liminal/infer"
)

// This file maps a model's declared inputs and outputs to Arrow schemas
// (the rules doc.go states). It is pure Go, independent of the runtime.

// elem is a tensor element type liminal handles.
type elem int

const (
	elemOther elem = iota
	elemFloat
	elemDouble
	elemInt32
	elemInt64
	elemString
	elemBool
)

func (e elem) String() string {
	switch e {
	case elemFloat:
		return "float"
	case elemDouble:
		return "double"
	case elemInt32:
		return "int32"
	case elemInt64:
		return "int64"
	case elemString:
		return "string"
	case elemBool:
		return "bool"
	}
	return "other"
}

func (e elem) isFloat() bool { return e == elemFloat || e == elemDouble }
func (e elem) isLabel() bool { return e == elemInt32 || e == elemInt64 || e == elemString }

// kind is the ONNX value kind of an input or output.
type kind int

const (
	kindTensor kind = iota
	kindSequence
	kindMap
	kindOther
)

// valueInfo describes one declared input or output. Dims holds -1 for a
// symbolic or unknown dimension.
type valueInfo struct {
	Name     string
	Kind     kind
	Elem     elem
	ElemName string // for messages about unsupported types
	Dims     []int64
}

func (v valueInfo) shape() string {
	parts := make([]string, len(v.Dims))
	for i, d := range v.Dims {
		if d < 0 {
			parts[i] = "N"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// outRole says how an output tensor becomes columns.
type outRole int

const (
	rolePlain  outRole = iota // one column per output value (name or name_<k>)
	roleLabel                 // the "prediction" column of a classifier
	roleProbs                 // probability_<k> columns
	roleArgmax                // probability_<k> columns plus prediction = argmax
)

// outputPlan is one model output: where its values go.
type outputPlan struct {
	valueInfo
	width int // values per row
	role  outRole
	col   int // index of its first column in the output schema
}

// layout is how a model's tensors map to columns.
type layout struct {
	in      *arrow.Schema
	out     *arrow.Schema
	inputs  []valueInfo
	matrix  bool  // one [N,F] input fed by every input column
	nf      int   // F of the matrix input
	batch   int64 // fixed batch size, 0 when dynamic
	outputs []outputPlan
}

// parseFeatureNames splits the "feature_names" metadata value (comma
// separated, surrounding spaces trimmed) and checks it names nf distinct,
// non-empty features.
func parseFeatureNames(meta string, nf int) ([]string, error) {
	names := strings.Split(meta, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	if len(names) != nf {
		return nil, fmt.Errorf("%w: metadata feature_names lists %d names for %d features", infer.ErrCorrupt, len(names), nf)
	}
	if err := checkNames(names); err != nil {
		return nil, fmt.Errorf("%w: metadata feature_names: %v", infer.ErrCorrupt, err)
	}
	return names, nil
}

func checkNames(names []string) error {
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("name %d is empty", i)
		}
		if seen[n] {
			return fmt.Errorf("feature %q appears twice", n)
		}
		seen[n] = true
	}
	return nil
}

func arrowType(e elem) arrow.DataType {
	switch e {
	case elemFloat:
		return arrow.PrimitiveTypes.Float32
	case elemDouble:
		return arrow.PrimitiveTypes.Float64
	case elemInt32, elemInt64:
		return arrow.PrimitiveTypes.Int64
	case elemString:
		return arrow.BinaryTypes.String
	case elemBool:
		return arrow.FixedWidthTypes.Boolean
	}
	return nil
}

// outType is the column type of an output value: floats widen to float64,
// integers to int64.
func outType(e elem) arrow.DataType {
	if e.isFloat() {
		return arrow.PrimitiveTypes.Float64
	}
	return arrowType(e)
}

// planLayout applies the input and output rules of doc.go. features are
// Config.Features; meta is the model's "feature_names" metadata ("" when
// absent).
func planLayout(ins, outs []valueInfo, features []string, meta string) (*layout, error) {
	l := &layout{}
	if err := l.planInputs(ins, features, meta); err != nil {
		return nil, err
	}
	if err := l.planOutputs(outs); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *layout) planInputs(ins []valueInfo, features []string, meta string) error {
	if len(ins) == 0 {
		return fmt.Errorf("%w: the model has no inputs", infer.ErrUnsupported)
	}
	var batch int64 = -1
	for _, in := range ins {
		if in.Kind != kindTensor {
			return fmt.Errorf("%w: input %q is not a tensor (liminal feeds tensors only)", infer.ErrUnsupported, in.Name)
		}
		if len(in.Dims) == 0 || len(in.Dims) > 2 {
			return fmt.Errorf("%w: input %q has shape %s; liminal feeds [N,F], [N,1] or [N] inputs (batch first)", infer.ErrUnsupported, in.Name, in.shape())
		}
		b := in.Dims[0]
		switch {
		case b == 0:
			return fmt.Errorf("%w: input %q has a batch dimension of 0", infer.ErrUnsupported, in.Name)
		case b > 0 && batch > 0 && b != batch:
			return fmt.Errorf("%w: inputs disagree on the batch size (%d and %d)", infer.ErrUnsupported, batch, b)
		case b > 0:
			batch = b
		}
	}
	if batch > 0 {
		l.batch = batch
	}
	l.inputs = ins
	in0 := ins[0]
	if len(ins) == 1 && len(in0.Dims) == 2 {
		// One [N,F] matrix: the features are its columns.
		if !in0.Elem.isFloat() {
			return fmt.Errorf("%w: input %q is a %s matrix %s; liminal feeds float or double matrices (or one input per column)", infer.ErrUnsupported, in0.Name, in0.ElemName, in0.shape())
		}
		nf := in0.Dims[1]
		if nf <= 0 {
			return fmt.Errorf("%w: input %q has shape %s: the feature count must be fixed", infer.ErrUnsupported, in0.Name, in0.shape())
		}
		l.matrix, l.nf = true, int(nf)
		var names []string
		switch {
		case len(features) > 0:
			if len(features) != l.nf {
				return fmt.Errorf("%w: the model has %d features (input %q %s), the spec names %d", infer.ErrBinding, l.nf, in0.Name, in0.shape(), len(features))
			}
			if err := checkNames(features); err != nil {
				return fmt.Errorf("%w: %v", infer.ErrBinding, err)
			}
			names = features
		case meta != "":
			var err error
			if names, err = parseFeatureNames(meta, l.nf); err != nil {
				return err
			}
		default:
			names = make([]string, l.nf)
			for i := range names {
				names[i] = "f" + strconv.Itoa(i)
			}
		}
		fields := make([]arrow.Field, l.nf)
		for i, n := range names {
			fields[i] = arrow.Field{Name: n, Type: arrowType(in0.Elem), Nullable: true}
		}
		l.in = arrow.NewSchema(fields, nil)
		return nil
	}
	// One input per column, [N] or [N,1], named by the input.
	fields := make([]arrow.Field, len(ins))
	for i, in := range ins {
		if len(in.Dims) == 2 && in.Dims[1] != 1 {
			return fmt.Errorf("%w: the model has %d inputs and input %q has shape %s; with several inputs each must be one column ([N,1] or [N])", infer.ErrUnsupported, len(ins), in.Name, in.shape())
		}
		switch in.Elem {
		case elemFloat, elemDouble, elemInt64, elemString:
		default:
			return fmt.Errorf("%w: input %q is %s; liminal feeds float, double, int64 and string inputs", infer.ErrUnsupported, in.Name, in.ElemName)
		}
		fields[i] = arrow.Field{Name: in.Name, Type: arrowType(in.Elem), Nullable: true}
	}
	if len(features) > 0 {
		if len(features) != len(ins) {
			return fmt.Errorf("%w: the model has %d inputs, the spec names %d features", infer.ErrBinding, len(ins), len(features))
		}
		if err := checkNames(features); err != nil {
			return fmt.Errorf("%w: %v", infer.ErrBinding, err)
		}
		for i, n := range features {
			fields[i].Name = n
		}
	}
	l.in = arrow.NewSchema(fields, nil)
	return nil
}

func (l *layout) planOutputs(outs []valueInfo) error {
	if len(outs) == 0 {
		return fmt.Errorf("%w: the model has no outputs", infer.ErrUnsupported)
	}
	plans := make([]outputPlan, len(outs))
	for i, o := range outs {
		if o.Kind == kindSequence || o.Kind == kindMap {
			return fmt.Errorf("%w: output %q is a sequence of maps (skl2onnx's ZipMap); export the classifier with options={id(model): {'zipmap': False}} so it outputs a label tensor and a probabilities matrix", infer.ErrUnsupported, o.Name)
		}
		if o.Kind != kindTensor {
			return fmt.Errorf("%w: output %q is not a tensor", infer.ErrUnsupported, o.Name)
		}
		if o.Elem == elemOther {
			return fmt.Errorf("%w: output %q is %s; liminal reads float, double, int32, int64, string and bool outputs", infer.ErrUnsupported, o.Name, o.ElemName)
		}
		p := outputPlan{valueInfo: o, width: 1}
		switch len(o.Dims) {
		case 1:
		case 2:
			if o.Dims[1] <= 0 {
				return fmt.Errorf("%w: output %q has shape %s: its width must be fixed", infer.ErrUnsupported, o.Name, o.shape())
			}
			p.width = int(o.Dims[1])
		default:
			return fmt.Errorf("%w: output %q has shape %s; liminal reads [N] and [N,K] outputs", infer.ErrUnsupported, o.Name, o.shape())
		}
		plans[i] = p
	}
	var fields []arrow.Field
	add := func(name string, t arrow.DataType) {
		fields = append(fields, arrow.Field{Name: name, Type: t, Nullable: true})
	}
	probs := func(p *outputPlan) {
		for k := 0; k < p.width; k++ {
			add(infer.ProbabilityPrefix+strconv.Itoa(k), arrow.PrimitiveTypes.Float64)
		}
	}
	switch {
	case len(plans) == 2 && plans[0].Elem.isLabel() && plans[0].width == 1 && plans[1].Elem.isFloat(),
		len(plans) == 2 && plans[1].Elem.isLabel() && plans[1].width == 1 && plans[0].Elem.isFloat():
		// (a) classifier: label + probabilities.
		li, pi := 0, 1
		if !plans[0].Elem.isLabel() || plans[0].width != 1 {
			li, pi = 1, 0
		}
		plans[li].role, plans[li].col = roleLabel, 0
		add(infer.PredictionColumn, outType(plans[li].Elem))
		plans[pi].role, plans[pi].col = roleProbs, 1
		probs(&plans[pi])
	case len(plans) == 1 && plans[0].Elem.isFloat() && plans[0].width == 1:
		// (b) one value per row.
		plans[0].role, plans[0].col = rolePlain, 0
		add(infer.PredictionColumn, arrow.PrimitiveTypes.Float64)
	case len(plans) == 1 && plans[0].Elem.isFloat():
		// (c) a softmax head: argmax + probabilities.
		plans[0].role, plans[0].col = roleArgmax, 1
		add(infer.PredictionColumn, arrow.PrimitiveTypes.Int64)
		probs(&plans[0])
	default:
		// (d) every output under its own name.
		for i := range plans {
			p := &plans[i]
			p.role, p.col = rolePlain, len(fields)
			if p.width == 1 {
				add(p.Name, outType(p.Elem))
				continue
			}
			for k := 0; k < p.width; k++ {
				add(p.Name+"_"+strconv.Itoa(k), outType(p.Elem))
			}
		}
		seen := map[string]bool{}
		for _, f := range fields {
			if seen[f.Name] {
				return fmt.Errorf("%w: two outputs map to the column %q", infer.ErrUnsupported, f.Name)
			}
			seen[f.Name] = true
		}
	}
	l.outputs = plans
	l.out = arrow.NewSchema(fields, nil)
	return nil
}
