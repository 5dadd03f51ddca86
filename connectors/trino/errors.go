package trino

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	trinoclient "github.com/trinodb/trino-go-client/trino"

	"github.com/liminal-data/liminal/connectors"
)

// transientNames are Trino and PrestoDB error names worth retrying: the
// cluster was starting, stopping, overloaded or lost a node.
var transientNames = map[string]bool{
	"SERVER_STARTING_UP":             true,
	"SERVER_SHUTTING_DOWN":           true,
	"NO_NODES_AVAILABLE":             true,
	"REMOTE_TASK_ERROR":              true,
	"REMOTE_TASK_MISMATCH":           true,
	"REMOTE_HOST_GONE":               true,
	"REMOTE_BUFFER_CLOSE_FAILED":     true,
	"PAGE_TRANSPORT_ERROR":           true,
	"PAGE_TRANSPORT_TIMEOUT":         true,
	"TOO_MANY_REQUESTS_FAILED":       true,
	"ABANDONED_QUERY":                true,
	"ABANDONED_TASK":                 true,
	"CLUSTER_OUT_OF_MEMORY":          true,
	"QUERY_QUEUE_FULL":               true,
	"GENERIC_INSUFFICIENT_RESOURCES": true,
	"SERVER_RESTARTED":               true,
}

// classify wraps err from trino-go-client as connectors.Transient or
// Permanent, prefixed with what was being done, and removes secret from
// its text. Context cancellation passes through unclassified.
func classify(err error, what, secret string) error {
	if err == nil {
		return nil
	}
	err = scrub(fmt.Errorf("%s: %w", what, err), secret)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isTransient(err) {
		return connectors.Transient(err)
	}
	return connectors.Permanent(err)
}

func isTransient(err error) bool {
	var te *trinoclient.ErrTrino
	if errors.As(err, &te) {
		if transientNames[te.ErrorName] {
			return true
		}
		return te.ErrorType == "INSUFFICIENT_RESOURCES" && !strings.HasPrefix(te.ErrorName, "EXCEEDED_")
	}
	var qf *trinoclient.ErrQueryFailed
	if errors.As(err, &qf) {
		switch qf.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true // refused, reset, unreachable: the server or network
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// scrubbed hides a secret in an error's text and keeps its chain for
// errors.Is and errors.As.
type scrubbed struct {
	err    error
	secret string
}

func (e *scrubbed) Error() string { return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx") }
func (e *scrubbed) Unwrap() error { return e.err }

func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbed{err: err, secret: secret}
}
