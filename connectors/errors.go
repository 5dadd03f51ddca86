package connectors

import (
	"errors"
	"fmt"
)

// ErrTransient marks errors worth retrying (a dropped connection, a busy
// server). Everything else is permanent unless a caller decides otherwise.
var ErrTransient = errors.New("transient")

// ErrPermanent marks errors that no retry can fix (bad input, bad SQL).
var ErrPermanent = errors.New("permanent")

type kindError struct {
	err  error
	kind error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() []error {
	return []error{e.err, e.kind}
}

// Transient wraps err so errors.Is(err, ErrTransient) holds.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{err: err, kind: ErrTransient}
}

// Permanent wraps err so errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{err: err, kind: ErrPermanent}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
