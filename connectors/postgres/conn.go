package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liminal-data/liminal/connectors"
)

// target is a parsed postgres:// URI: where to connect, and what to read
// or write. Parameters other than table and query are connection
// parameters passed to pgx (sslmode, connect_timeout, application_name...).
type target struct {
	uri      string // as given, redacted for messages
	dsn      string // connection URI without the password and our parameters
	password string
	host     string // host:port for messages
	schema   string // "" = the search path's first schema (public)
	table    string
	query    string
}

// parseURI parses postgres://user@host:port/db?table=[schema.]T or
// ?query=SQL (also postgresql://). The password comes from secret; one in
// the URI is accepted but secret wins.
func parseURI(uri, secret string) (*target, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("postgres: bad URI %q", connectors.Redact(uri)))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, connectors.Permanent(fmt.Errorf("postgres: URI %s: scheme must be postgres or postgresql", connectors.Redact(uri)))
	}
	t := &target{uri: connectors.Redact(uri), password: secret}
	if u.User != nil {
		if p, ok := u.User.Password(); ok && secret == "" {
			t.password = p
		}
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	table := q.Get("table")
	// A query of only blanks and semicolons is no query.
	query := strings.TrimSpace(strings.TrimRight(q.Get("query"), "; \t\r\n"))
	q.Del("table")
	q.Del("query")
	u.RawQuery = q.Encode()
	t.dsn = u.String()
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "5432"
	}
	t.host = net.JoinHostPort(host, port)
	switch {
	case table != "" && query != "":
		return nil, connectors.Permanent(fmt.Errorf("postgres: URI %s: give table or query, not both", t.uri))
	case table == "" && query == "":
		return nil, connectors.Permanent(fmt.Errorf("postgres: URI %s: needs ?table=name or ?query=SQL", t.uri))
	case table != "":
		t.schema, t.table = splitTable(table)
		if t.table == "" {
			return nil, connectors.Permanent(fmt.Errorf("postgres: URI %s: empty table name", t.uri))
		}
	default:
		t.query = query
	}
	return t, nil
}

// splitTable splits "schema.table" (each part optionally double-quoted)
// at the first dot outside quotes.
func splitTable(s string) (schema, table string) {
	inq := false
	for i, r := range s {
		switch {
		case r == '"':
			inq = !inq
		case r == '.' && !inq:
			return unquote(s[:i]), unquote(s[i+1:])
		}
	}
	return "", unquote(s)
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// ident quotes an identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// literal quotes a string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// qualified is the quoted [schema.]table.
func (t *target) qualified(table string) string {
	if t.schema == "" {
		return ident(table)
	}
	return ident(t.schema) + "." + ident(table)
}

// connect opens one connection. Errors name host:port and never carry the
// password.
func (t *target) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(t.dsn)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("postgres %s: %s", t.host, t.scrub(err.Error())))
	}
	cfg.Password = t.password
	// Connection-scoped settings that the connector relies on.
	cfg.RuntimeParams["application_name"] = firstNonEmpty(cfg.RuntimeParams["application_name"], "liminal")
	cfg.RuntimeParams["DateStyle"] = "ISO"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, t.wrap(err, "connect")
	}
	return conn, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// scrub removes the password from a message.
func (t *target) scrub(s string) string {
	if t.password != "" {
		s = strings.ReplaceAll(s, t.password, "xxxxx")
		if e := url.QueryEscape(t.password); e != t.password {
			s = strings.ReplaceAll(s, e, "xxxxx")
		}
	}
	return s
}

// pgError is an error of the server or of the connection, its message
// scrubbed of the password, classified transient or permanent.
type pgError struct {
	msg   string
	cause error // kept for errors.Is/As when it carries no secret
	kind  error
}

func (e *pgError) Error() string { return e.msg }
func (e *pgError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.cause, e.kind}
}

// wrap classifies err and prefixes it with the server and what was being
// done. Context cancellation passes through as itself.
func (t *target) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	var pe *pgError
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("postgres %s: %s: %w", t.host, what, context.Canceled)
		}
		return fmt.Errorf("postgres %s: %s: %w", t.host, what, context.DeadlineExceeded)
	}
	msg := t.scrub(err.Error())
	e := &pgError{msg: fmt.Sprintf("postgres %s: %s: %s", t.host, what, msg), kind: connectors.ErrPermanent}
	if msg == err.Error() {
		e.cause = err
	}
	if isTransient(err) {
		e.kind = connectors.ErrTransient
	}
	return e
}

// isTransient reports errors a retry may fix: lost or refused connections,
// serialization failures, deadlocks, a server starting or shutting down.
func isTransient(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"), // connection exception
			strings.HasPrefix(pg.Code, "40"),                           // serialization failure, deadlock
			strings.HasPrefix(pg.Code, "53"),                           // insufficient resources
			pg.Code == "55P03",                                         // lock not available
			pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03": // shutdown, cannot connect now
			return true
		}
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ETIMEDOUT) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		var dial *net.OpError
		return errors.As(err, &dial)
	}
	return pgconn.SafeToRetry(err)
}
