package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads, interpolates and validates the spec file at path, looking
// variables up with os.LookupEnv. Problems in the file are returned as
// Errors; a file that cannot be read gives a wrapped *fs.PathError.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes, interpolates and validates a spec held in data, looking
// variables up with os.LookupEnv. file names the spec in error messages and
// sets Spec.File and Spec.Dir; it may be "".
func Parse(data []byte, file string) (*Spec, error) {
	return ParseWithEnv(data, file, os.LookupEnv)
}

// ParseWithEnv is Parse with the variable lookup given: ${VAR} references
// are resolved with lookup instead of os.LookupEnv (nil means
// os.LookupEnv). On failure it returns a nil Spec and an Errors holding
// every problem found, sorted by line.
func ParseWithEnv(data []byte, file string, lookup LookupFunc) (*Spec, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	s := &Spec{File: file, pos: map[string]position{}}
	if file != "" {
		s.Dir = filepath.Dir(file)
	}
	root, err := parseYAML(data, file)
	if err != nil {
		return nil, err
	}
	d := &decoder{
		file:   file,
		lookup: lookup,
		pos:    s.pos,
		bad:    map[string]bool{},
		interp: map[*yaml.Node]bool{},
		budget: max(minBudget, budgetPerNode*countNodes(root)),
	}
	d.interpolate(root, "", root)
	d.decode(root, reflect.ValueOf(s).Elem(), "")
	if d.budget <= 0 {
		d.errs = append(d.errs, &Error{File: file, Line: root.Line, Column: root.Column, Msg: "document contains excessive aliasing"})
		return nil, d.errs.sort()
	}
	v := &validator{s: s, bad: d.bad}
	v.validate()
	errs := append(d.errs, v.errs...).sort()
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors], &Error{File: file, Msg: fmt.Sprintf("%d more problems not shown", more)})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return s, nil
}

// maxErrors bounds the problems reported for one file.
const maxErrors = 500

// The decoder visits at most budgetPerNode times as many nodes as the
// document holds (at least minBudget), so that aliases referring to aliases
// cannot make decoding take exponential time.
const (
	budgetPerNode = 64
	minBudget     = 100_000
)

var yamlLineError = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data into the root node of its only document.
func parseYAML(data []byte, file string) (root *yaml.Node, err error) {
	fail := func(line int, msg string) (*yaml.Node, error) {
		return nil, Errors{{File: file, Line: line, Msg: msg}}
	}
	yamlErr := func(err error) (*yaml.Node, error) {
		msg := err.Error()
		if m := yamlLineError.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return fail(line, m[2])
		}
		return fail(0, strings.TrimPrefix(msg, "yaml: "))
	}
	defer func() {
		// yaml.v3 turns its own failures into errors, but has panicked on
		// malformed input before; a spec parser must not crash its caller.
		if r := recover(); r != nil {
			root, err = fail(0, fmt.Sprintf("yaml parser failed: %v", r))
		}
	}()

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return fail(0, "spec is empty")
		}
		return yamlErr(err)
	}
	for {
		// Later documents must be empty (a trailing "---" is harmless).
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return yamlErr(err)
		}
		if !emptyDocument(&next) {
			return fail(next.Line, "a spec file holds one YAML document, found a second one")
		}
	}
	if emptyDocument(&doc) {
		return fail(0, "spec is empty")
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, fmt.Sprintf("a spec is a mapping with name, sources, sinks, pipelines and services, found %s", describe(root)))
	}
	return root, nil
}

// emptyDocument reports whether doc holds nothing but a null.
func emptyDocument(doc *yaml.Node) bool {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return true
	}
	root := doc.Content[0]
	return root.Kind == yaml.ScalarNode && root.Tag == "!!null"
}

// countNodes counts the nodes of the tree, not following aliases.
func countNodes(n *yaml.Node) int {
	c := 1
	for _, child := range n.Content {
		c += countNodes(child)
	}
	return c
}

// decoder decodes a yaml.Node tree into the spec types, recording where
// each field was defined and collecting every problem.
type decoder struct {
	file   string
	lookup LookupFunc
	pos    map[string]position
	errs   Errors
	// bad holds the paths whose values could not be decoded, so that
	// validation does not report them a second time as missing.
	bad map[string]bool
	// interp holds the scalars whose value came from interpolation.
	interp map[*yaml.Node]bool
	budget int
}

// errorf records a problem at path, placed at node n.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// valueErrorf records a problem with the value at path, placed where the
// field was defined (its key), or at n when that is unknown.
func (d *decoder) valueErrorf(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	e := &Error{File: d.file, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)}
	if p, ok := d.pos[path]; ok {
		e.Line, e.Column = p.Line, p.Column
	}
	d.errs = append(d.errs, e)
}

func (d *decoder) record(path string, n *yaml.Node) {
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = position{Line: n.Line, Column: n.Column}
	}
}

// interpolate expands ${VAR} references in every scalar value of the tree
// (map keys are left alone). Aliases are skipped: the node they point to is
// expanded where it is defined.
// Problems are placed at "at": the key of a mapping value, or the item
// itself in a list.
func (d *decoder) interpolate(n *yaml.Node, path string, at *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			child := path
			if key.Kind == yaml.ScalarNode && key.Tag != "!!merge" {
				child = joinPath(path, key.Value)
			}
			d.interpolate(val, child, key)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			d.interpolate(item, indexPath(path, i), item)
		}
	case yaml.ScalarNode:
		out, used, problems := expand(n.Value, d.lookup)
		for _, p := range problems {
			d.errorf(at, path, "%s", p)
		}
		if len(problems) > 0 {
			d.bad[path] = true
		}
		n.Value = out
		if used {
			d.interp[n] = true
		}
	}
}

// decode stores node n into v, the value of the field at path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.budget <= 0 {
		return
	}
	d.budget--
	d.record(path, n) // an alias is placed where it is used
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" && !d.interp[n] {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
		d.budget++ // the pointer is not a node of its own
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, path, "a string")
			return
		}
		v.SetString(n.Value)
	case reflect.Int, reflect.Int64:
		d.decodeInt(n, v, path)
	case reflect.Bool:
		d.decodeBool(n, v, path)
	default:
		panic(fmt.Sprintf("spec: decoder does not handle %s fields", v.Type()))
	}
}

func (d *decoder) typeError(n *yaml.Node, path, want string) {
	hint := ""
	if want == "a list" && n.Kind == yaml.ScalarNode {
		hint = fmt.Sprintf(" (write [%s] for a list of one)", n.Value)
	}
	d.valueErrorf(n, path, "expected %s, found %s%s", want, describe(n), hint)
}

// describe names the kind of a node for messages: `string "abc"`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "boolean " + v
		case "!!int":
			return "integer " + v
		case "!!float":
			return "number " + v
		default:
			return "string " + strconv.Quote(v)
		}
	}
	return "nothing"
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for hops := 0; n.Kind == yaml.AliasNode && n.Alias != nil && hops < 100; hops++ {
		n = n.Alias
	}
	return n
}

// pair is a key and its value in a mapping; merged pairs come from a
// "<<" merge key and lose to explicit keys without complaint.
type pair struct {
	key, val *yaml.Node
	merged   bool
}

// pairs returns the explicit pairs of mapping n followed by the pairs merged
// into it with "<<" keys, reporting duplicate and non-string keys.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var explicit, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		key = resolve(key)
		if key.Kind != yaml.ScalarNode {
			d.errorf(key, path, "mapping keys must be strings, found %s", describe(key))
			continue
		}
		if key.Tag == "!!merge" {
			merged = append(merged, d.mergePairs(val, path, map[*yaml.Node]bool{n: true})...)
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.errorf(key, path, "duplicate key %q (first defined at line %d)", key.Value, first.Line)
			continue
		}
		seen[key.Value] = key
		explicit = append(explicit, pair{key: key, val: val})
	}
	return append(explicit, merged...)
}

// mergePairs returns the pairs that the value of a "<<" key merges in: those
// of a mapping, or of each mapping of a list, earlier ones first.
func (d *decoder) mergePairs(val *yaml.Node, path string, visiting map[*yaml.Node]bool) []pair {
	val = resolve(val)
	if d.budget <= 0 {
		return nil
	}
	d.budget--
	if visiting[val] {
		d.errorf(val, path, "merge key (<<) refers to the mapping it is in")
		return nil
	}
	switch val.Kind {
	case yaml.MappingNode:
		visiting[val] = true
		defer delete(visiting, val)
		var out []pair
		var nested []pair
		for i := 0; i+1 < len(val.Content); i += 2 {
			key, v := resolve(val.Content[i]), val.Content[i+1]
			switch {
			case key.Kind != yaml.ScalarNode:
				d.errorf(key, path, "mapping keys must be strings, found %s", describe(key))
				continue
			case key.Tag == "!!merge":
				nested = append(nested, d.mergePairs(v, path, visiting)...)
				continue
			}
			out = append(out, pair{key: key, val: v, merged: true})
		}
		return append(out, nested...)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range val.Content {
			item = resolve(item)
			if item.Kind != yaml.MappingNode {
				d.errorf(item, path, "merge key (<<) needs a mapping or a list of mappings, found %s", describe(item))
				continue
			}
			out = append(out, d.mergePairs(item, path, visiting)...)
		}
		return out
	default:
		d.errorf(val, path, "merge key (<<) needs a mapping or a list of mappings, found %s", describe(val))
		return nil
	}
}

// field is a struct field that the YAML document may set.
type field struct {
	name  string
	index int
}

// yamlFields lists the fields of struct type t by their yaml names.
func yamlFields(t reflect.Type) []field {
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, field{name: name, index: i})
	}
	return fields
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, "a mapping")
		return
	}
	fields := yamlFields(v.Type())
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	seen := map[string]bool{}
	for _, p := range d.pairs(n, path) {
		name := p.key.Value
		if seen[name] {
			continue // an explicit key overrides a merged one
		}
		seen[name] = true
		i := indexOf(names, name)
		if i < 0 {
			msg := fmt.Sprintf("unknown field %q", name)
			if s := suggest(name, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(p.key, path, "%s", msg)
			continue
		}
		child := joinPath(path, name)
		d.record(child, p.key)
		d.decode(p.val, v.Field(fields[i].index), child)
	}
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return -1
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.typeError(n, path, "a mapping")
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, p := range d.pairs(n, path) {
		key := reflect.ValueOf(p.key.Value).Convert(v.Type().Key())
		if m.MapIndex(key).IsValid() {
			continue // an explicit key overrides a merged one
		}
		child := joinPath(path, p.key.Value)
		d.record(child, p.key)
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.val, elem, child)
		m.SetMapIndex(key, elem)
	}
	v.Set(m)
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.typeError(n, path, "a list")
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), indexPath(path, i))
	}
	v.Set(s)
}

// decodeInt accepts YAML integers, whole numbers written as floats (1e6),
// and interpolated values that hold a decimal integer.
func (d *decoder) decodeInt(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, path, "an integer")
		return
	}
	var (
		i  int64
		ok bool
	)
	switch {
	case d.interp[n]:
		var err error
		i, err = strconv.ParseInt(strings.TrimSpace(n.Value), 10, 64)
		ok = err == nil
	case n.Tag == "!!int":
		ok = n.Decode(&i) == nil
	case n.Tag == "!!float":
		var f float64
		if n.Decode(&f) == nil && f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
			i, ok = int64(f), true
		}
	}
	if !ok {
		d.typeError(n, path, "an integer")
		return
	}
	if v.OverflowInt(i) {
		d.valueErrorf(n, path, "integer %d is out of range", i)
		return
	}
	v.SetInt(i)
}

// decodeBool accepts YAML booleans and interpolated true/false.
func (d *decoder) decodeBool(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.typeError(n, path, "true or false")
		return
	}
	var b bool
	if d.interp[n] || n.Tag == "!!str" {
		switch strings.ToLower(strings.TrimSpace(n.Value)) {
		case "true":
			b = true
		case "false":
		default:
			d.typeError(n, path, "true or false")
			return
		}
	} else if n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.typeError(n, path, "true or false")
		return
	}
	v.SetBool(b)
}

// suggest returns the candidate closest to name when it is within edit
// distance 2, or "".
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(name), c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
