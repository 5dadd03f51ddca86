package alert

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/liminal-data/liminal/spec"
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent wraps err as not worth retrying.
func permanent(err error) error { return &permanentError{err} }

// statusError is a non-2xx HTTP response.
type statusError struct {
	target     string // the redacted URL
	code       int
	body       string
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("post %s: HTTP %d", e.target, e.code)
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// isPermanent reports whether err is not worth retrying: a permanent
// error, an HTTP status other than 429 and 5xx, an SMTP 5xx reply, a TLS
// certificate the server cannot prove.
func isPermanent(err error) bool {
	var pe *permanentError
	var se *statusError
	var te *textproto.Error
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &pe), errors.As(err, &ce), errors.As(err, &ue), errors.As(err, &he):
		return true
	case errors.As(err, &se):
		return se.code != http.StatusTooManyRequests && se.code < 500
	case errors.As(err, &te):
		return te.Code >= 500
	}
	return false
}

// retryAfter is the wait an HTTP 429 or 503 asked for, or 0.
func retryAfter(err error) time.Duration {
	var se *statusError
	if errors.As(err, &se) {
		return se.retryAfter
	}
	return 0
}

// redact is a URL fit for logs: scheme and host only, since the path
// and query of a webhook URL often are its secret (Slack's are).
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(webhook url)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}

// webhook sends the event as JSON to a generic webhook.
func (n *Notifier) webhook(h spec.Webhook) func(context.Context, Event) error {
	return func(ctx context.Context, ev Event) error {
		body, err := json.Marshal(ev)
		if err != nil {
			return permanent(fmt.Errorf("encode event: %w", err))
		}
		return n.post(ctx, h, body)
	}
}

// slack sends a message to a Slack-compatible incoming webhook.
func (n *Notifier) slack(h spec.Webhook) func(context.Context, Event) error {
	return func(ctx context.Context, ev Event) error {
		body, err := json.Marshal(map[string]string{"text": ev.slack()})
		if err != nil {
			return permanent(fmt.Errorf("encode message: %w", err))
		}
		return n.post(ctx, h, body)
	}
}

// post sends body to h. Errors never carry the URL's path or the header
// values.
func (n *Notifier) post(ctx context.Context, h spec.Webhook, body []byte) error {
	target := redact(h.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("post %s: bad url", target))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "liminal-alert/1")
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the whole URL
		}
		return fmt.Errorf("post %s: %w", target, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	se := &statusError{target: target, code: resp.StatusCode, body: oneLine(clip(string(snippet), 200))}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		se.retryAfter = time.Duration(s) * time.Second
	}
	return se
}

// email sends the event by SMTP: STARTTLS when the server offers it
// (required with tls: starttls, skipped with tls: none), PLAIN
// authentication when a username is set. Like net/smtp, it never sends a
// password over an unencrypted connection except to a loopback server.
func (n *Notifier) email(e spec.Email) func(context.Context, Event) error {
	return func(ctx context.Context, ev Event) error {
		host, _, err := net.SplitHostPort(e.SMTP)
		if err != nil {
			return permanent(fmt.Errorf("smtp %s: %w", e.SMTP, err))
		}
		var password string
		if e.Username != "" && e.PasswordEnv != "" {
			if password = n.opts.Lookup(e.PasswordEnv); password == "" {
				return permanent(fmt.Errorf("smtp %s: password_env %s is not set", e.SMTP, e.PasswordEnv))
			}
		}
		msg, err := message(e, ev)
		if err != nil {
			return permanent(fmt.Errorf("smtp %s: %w", e.SMTP, err))
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", e.SMTP)
		if err != nil {
			return fmt.Errorf("smtp %s: %w", e.SMTP, err)
		}
		// net/smtp knows no context: a deadline bounds the exchange, and
		// cancellation closes the connection.
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		defer stop()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		if err := n.converse(conn, host, e, password, msg); err != nil {
			var ne net.Error
			switch {
			case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
				// The deadline, or the connection closed under it: say so.
				return fmt.Errorf("smtp %s: no answer within %s: %w", e.SMTP, n.opts.Timeout, context.DeadlineExceeded)
			case ctx.Err() != nil:
				return fmt.Errorf("smtp %s: %w", e.SMTP, ctx.Err())
			}
			return fmt.Errorf("smtp %s: %w", e.SMTP, err)
		}
		return nil
	}
}

// converse runs one SMTP session on conn.
func (n *Notifier) converse(conn net.Conn, host string, e spec.Email, password string, msg []byte) error {
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(helloName()); err != nil {
		return err
	}
	if e.TLS != "none" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			cfg := &tls.Config{}
			if n.opts.TLSConfig != nil {
				cfg = n.opts.TLSConfig.Clone()
			}
			cfg.ServerName = host
			if err := c.StartTLS(cfg); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
		} else if e.TLS == "starttls" {
			return permanent(errors.New("server does not offer STARTTLS (set tls: none to send without it)"))
		}
	}
	if e.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent(errors.New("server does not offer AUTH"))
		}
		if err := c.Auth(smtp.PlainAuth("", e.Username, password, host)); err != nil {
			var te *textproto.Error
			if !errors.As(err, &te) {
				err = permanent(err) // refused before asking: no TLS
			}
			return fmt.Errorf("auth as %s: %w", e.Username, err)
		}
	}
	if err := c.Mail(address(e.From)); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	for _, to := range e.To {
		if err := c.Rcpt(address(to)); err != nil {
			return fmt.Errorf("rcpt to %s: %w", address(to), err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	_ = c.Quit() // the server took the message: a failed QUIT must not send it again
	return nil
}

// message is the e-mail of ev: headers and a quoted-printable UTF-8
// plain-text body.
func message(e spec.Email, ev Event) ([]byte, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	header := func(k, v string) {
		b.WriteString(k + ": " + oneLine(v) + "\r\n")
	}
	header("From", e.From)
	header("To", strings.Join(e.To, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", "[liminal] "+ev.Title()))
	header("Date", time.Now().Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id[:])+"@liminal>")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	header("X-Liminal-Event", ev.Kind)
	if ev.RunID != "" {
		header("X-Liminal-Run-ID", ev.RunID)
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(ev.text(), "\n", "\r\n"))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// address is the bare address of "Name <addr>", or s as it is.
func address(s string) string {
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

// helloName is the name the client greets the server with.
func helloName() string {
	if h, err := os.Hostname(); err == nil && h != "" && !strings.ContainsAny(h, " \r\n") {
		return h
	}
	return "localhost"
}
