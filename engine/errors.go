package engine

import (
	"errors"
	"strings"
)

// IsUserError reports whether err is DuckDB rejecting the user's SQL or
// data (syntax, binding, types, conversions, bad input files): no retry
// can fix it.
func IsUserError(err error) bool {
	var se *SQLError
	if errors.As(err, &se) {
		return true
	}
	var de *Error
	return errors.As(err, &de) && userErrorClasses[de.Class]
}

// userErrorClasses are DuckDB's error classes for bad SQL or bad data.
var userErrorClasses = map[string]bool{
	"Parser": true, "Syntax": true, "Binder": true, "Catalog": true, "Conversion": true,
	"Out of Range": true, "Invalid Input": true, "Constraint": true, "Not implemented": true,
	"Mismatch Type": true, "Divide by Zero": true, "Invalid type": true, "Decimal": true,
	"IO": true, "Permission": true,
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
