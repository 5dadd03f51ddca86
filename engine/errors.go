package engine

import (
	"errors"

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
