package engine

import (
	"errors"
	"strings"

	"github.com/marcboeker/go-duckdb"
)

// IsUserError reports whether err is DuckDB rejecting the user's SQL or
// data (syntax, binding, types, conversions, bad input files): no retry
// can fix it.
func IsUserError(err error) bool {
	var se *SQLError
	if errors.As(err, &se) {
		return true
	}
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return false
	}
	switch de.Type {
	case duckdb.ErrorTypeParser, duckdb.ErrorTypeSyntax, duckdb.ErrorTypeBinder, duckdb.ErrorTypeCatalog,
		duckdb.ErrorTypeConversion, duckdb.ErrorTypeOutOfRange, duckdb.ErrorTypeInvalidInput,
		duckdb.ErrorTypeConstraint, duckdb.ErrorTypeNotImplemented, duckdb.ErrorTypeMismatchType,
		duckdb.ErrorTypeDivideByZero, duckdb.ErrorTypeInvalidType, duckdb.ErrorTypeDecimal,
		duckdb.ErrorTypeIO, duckdb.ErrorTypePermission:
		return true
	}
	return false
}

// ExecError is an error from running a job, rendered on one line: DuckDB's
// multi-line messages (a CSV error's parameter dump, "Possible fixes", the
// echo of the query) are cut to what says what went wrong. Unwrap gives
// the original.
type ExecError struct{ Err error }

func (e *ExecError) Error() string { return oneLine(e.Err.Error()) }
func (e *ExecError) Unwrap() error { return e.Err }

func oneLine(msg string) string {
	var keep []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "Possible fixes") || strings.HasPrefix(l, "LINE ") {
			break
		}
		keep = append(keep, l)
	}
	if len(keep) == 0 {
		return strings.TrimSpace(msg)
	}
	return strings.Join(keep, "; ")
}
