package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a spec file, placed at a line and a field path.
type Error struct {
	// File is the spec file name ("" when unknown).
	File string
	// Line and Column are 1-based; 0 when unknown.
	Line, Column int
	// Path is the field path, such as "pipelines[0].tasks[1].sql_file"; ""
	// for the whole document.
	Path string
	// Msg describes the problem.
	Msg string
}

// Error returns "file:line: path: msg", leaving out the parts that are
// unknown.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a spec file, sorted by line. Load and
// Parse return a non-empty Errors as their error; use errors.As to get it.
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	if len(es) == 0 {
		return "no errors"
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as a list of errors, for errors.As and
// errors.Is.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// sort orders the problems by line and column, keeping the order of
// problems at the same place, and drops repeats of a problem at the same
// place: an anchor merged or aliased several times reports its problems
// once, under the path where it is first used.
func (es Errors) sort() Errors {
	type place struct {
		file      string
		line, col int
		msg       string
	}
	seen := map[place]bool{}
	out := es[:0]
	for _, e := range es {
		k := place{e.File, e.Line, e.Column, e.Msg}
		if e.Line > 0 && seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return out
}

// position is where a field was defined: the line and column of its key,
// or of the item for list items.
type position struct {
	Line, Column int
}

// Errorf returns an Error for the field at path, placed at the line where
// that field was defined, or where its nearest enclosing field was (a
// missing "sql" field of a task is placed at the task). Packages that find
// semantic problems after parsing use it to name the place in the file:
//
//	s.Errorf("pipelines[0].tasks[1].sql", "column %q not found", "age")
func (s *Spec) Errorf(path string, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if s == nil {
		return e
	}
	e.File = s.File
	if p, ok := s.lookup(path); ok {
		e.Line, e.Column = p.Line, p.Column
	}
	return e
}

// Line returns the line where the field at path, or its nearest enclosing
// field, was defined; 0 when unknown.
func (s *Spec) Line(path string) int {
	p, _ := s.lookup(path)
	return p.Line
}

// has reports whether the field at path itself appeared in the file.
func (s *Spec) has(path string) bool {
	_, ok := s.pos[path]
	return ok
}

// lookup finds the position of path or of its nearest known parent.
func (s *Spec) lookup(path string) (position, bool) {
	if s == nil || s.pos == nil {
		return position{}, false
	}
	for {
		if p, ok := s.pos[path]; ok {
			return p, true
		}
		if path == "" {
			return position{}, false
		}
		path = parentPath(path)
	}
}

// joinPath returns the path of the field or map key name inside parent.
// Names that are not plain words are quoted: `options["csv.delim"]`.
func joinPath(parent, name string) string {
	if !plainKey(name) {
		return parent + "[" + strconv.Quote(name) + "]"
	}
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// indexPath returns the path of item i of the list at parent.
func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// plainKey reports whether name can appear in a path without quotes.
func plainKey(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// parentPath drops the last element of path: "a.b[2]" -> "a.b" -> "a" -> "".
// Malformed paths lose their last "." or "[" part, so lookups still end.
func parentPath(path string) string {
	last := 0 // start of the last element
	for i := 0; i < len(path); {
		switch path[i] {
		case '.':
			last = i
			i++
		case '[':
			last = i
			if i+1 < len(path) && path[i+1] == '"' {
				q, err := strconv.QuotedPrefix(path[i+1:])
				if err != nil {
					return fallbackParent(path)
				}
				i += 1 + len(q)
			} else {
				i++
			}
			for i < len(path) && path[i] != ']' {
				i++
			}
			if i == len(path) {
				return fallbackParent(path)
			}
			i++
		default:
			i++
		}
	}
	return path[:last]
}

func fallbackParent(path string) string {
	return path[:max(0, strings.LastIndexAny(path, ".["))]
}
