package alert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liminal-data/liminal/spec"
)

// smtpServer is a minimal SMTP receiver on loopback speaking real SMTP:
// EHLO/HELO, STARTTLS (when tls is set), AUTH PLAIN, MAIL FROM, RCPT TO,
// DATA, RSET, NOOP, QUIT.
type smtpServer struct {
	ln net.Listener
	// Set before the first connection:
	tls      *tls.Config // offer STARTTLS
	user     string      // with pass: the only credentials AUTH accepts
	pass     string
	hang     bool // accept connections, never answer
	tempFail int  // answer 451 to this many MAIL commands

	mu    sync.Mutex
	msgs  []received
	conns []net.Conn
	wg    sync.WaitGroup
}

// received is one message the server took.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

// newSMTPServer starts a server, set up by configure first.
func newSMTPServer(t *testing.T, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	if configure != nil {
		configure(s)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				s.handle(c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *smtpServer) addr() string { return s.ln.Addr().String() }

// close stops the server and waits for its goroutines; idempotent.
func (s *smtpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *smtpServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *smtpServer) handle(c net.Conn) {
	if s.hang {
		io.Copy(io.Discard, c) // until the client gives up
		return
	}
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 test.local ESMTP ready")
	var (
		isTLS bool
		user  string
		cur   received
	)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			exts := []string{"test.local greets " + arg}
			if s.tls != nil && !isTLS {
				exts = append(exts, "STARTTLS")
			}
			exts = append(exts, "AUTH PLAIN", "8BITMIME")
			for i, e := range exts {
				sep := "-"
				if i == len(exts)-1 {
					sep = " "
				}
				tp.PrintfLine("250%s%s", sep, e)
			}
		case "STARTTLS":
			if s.tls == nil || isTLS {
				tp.PrintfLine("502 not now")
				continue
			}
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			tp = textproto.NewConn(tc)
			isTLS = true
			user = ""
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !strings.EqualFold(mech, "PLAIN") {
				tp.PrintfLine("504 unknown mechanism")
				continue
			}
			if resp == "" {
				tp.PrintfLine("334 ")
				if resp, err = tp.ReadLine(); err != nil {
					return
				}
			}
			dec, _ := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(dec), "\x00")
			if len(parts) == 3 && parts[1] == s.user && parts[2] == s.pass {
				user = parts[1]
				tp.PrintfLine("235 2.7.0 authenticated")
			} else {
				tp.PrintfLine("535 5.7.8 bad credentials")
			}
		case "MAIL":
			if s.user != "" && user == "" {
				tp.PrintfLine("530 5.7.0 authentication required")
				continue
			}
			s.mu.Lock()
			fail := s.tempFail > 0
			s.tempFail--
			s.mu.Unlock()
			if fail {
				tp.PrintfLine("451 4.3.0 try again later")
				continue
			}
			from, _, _ := strings.Cut(strings.TrimPrefix(arg, "FROM:"), " ") // drop BODY=8BITMIME
			cur = received{from: from, tls: isTLS, user: user}
			tp.PrintfLine("250 ok")
		case "RCPT":
			cur.to = append(cur.to, strings.TrimPrefix(arg, "TO:"))
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 end with .")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			cur.data = data
			s.mu.Lock()
			s.msgs = append(s.msgs, cur)
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
		case "RSET", "NOOP":
			tp.PrintfLine("250 ok")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("502 unknown command")
		}
	}
}

// selfSigned is a certificate for 127.0.0.1 and the pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test.local"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

func TestEmail(t *testing.T) {
	serverTLS, pool := selfSigned(t)
	env := map[string]string{"SMTP_PASSWORD": "pw-s3cret"}
	tests := map[string]struct {
		tls      bool // server offers STARTTLS
		auth     bool // server wants alerts/pw-s3cret
		tempFail int  // 451s before accepting
		email    spec.Email
		trust    bool // client trusts the server's certificate
		stats    ChannelStats
		conns    int    // connections the server saw
		wantTLS  bool   // the message came over TLS
		logLike  string // in the logs
	}{
		"plain": {
			stats: ChannelStats{Sent: 1}, conns: 1,
		},
		"starttls and auth": {
			tls: true, auth: true, trust: true,
			email: spec.Email{Username: "alerts", PasswordEnv: "SMTP_PASSWORD"},
			stats: ChannelStats{Sent: 1}, conns: 1, wantTLS: true,
		},
		"auth without tls on loopback": {
			auth:  true,
			email: spec.Email{Username: "alerts", PasswordEnv: "SMTP_PASSWORD"},
			stats: ChannelStats{Sent: 1}, conns: 1,
		},
		"tls none skips starttls": {
			tls:   true,
			email: spec.Email{TLS: "none"},
			stats: ChannelStats{Sent: 1}, conns: 1,
		},
		"starttls required, not offered": {
			email: spec.Email{TLS: "starttls"},
			stats: ChannelStats{Failed: 1}, conns: 1, logLike: "does not offer STARTTLS",
		},
		"untrusted certificate": {
			tls:   true,
			stats: ChannelStats{Failed: 1}, conns: 1, logLike: "certificate",
		},
		"wrong password not retried": {
			tls: true, auth: true, trust: true,
			email: spec.Email{Username: "alerts", PasswordEnv: "OTHER_PASSWORD"},
			stats: ChannelStats{Failed: 1}, conns: 0, logLike: "password_env OTHER_PASSWORD is not set",
		},
		"bad credentials not retried": {
			tls: true, auth: true, trust: true,
			email: spec.Email{Username: "mallory", PasswordEnv: "SMTP_PASSWORD"},
			stats: ChannelStats{Failed: 1}, conns: 1, logLike: "bad credentials",
		},
		"temporary failure retried": {
			tempFail: 2,
			stats:    ChannelStats{Sent: 1, Retried: 2}, conns: 3, logLike: "mail from: 451",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			srv := newSMTPServer(t, func(s *smtpServer) {
				if tt.tls {
					s.tls = serverTLS
				}
				if tt.auth {
					s.user, s.pass = "alerts", "pw-s3cret"
				}
				s.tempFail = tt.tempFail
			})
			e := tt.email
			e.SMTP = srv.addr()
			e.From = "Liminal <liminal@example.com>"
			e.To = []string{"ops@example.com", "Data Team <data@example.com>"}
			var logs logBuffer
			opts := testOptions(&logs)
			opts.Lookup = func(k string) string { return env[k] }
			if tt.trust {
				opts.TLSConfig = &tls.Config{RootCAs: pool}
			}
			n := New([]spec.Alert{{Name: "mail", Email: &e}}, opts)
			n.Notify(sampleEvent())
			closeWithin(t, n, 10*time.Second)
			if s := n.Stats()[ChannelEmail]; s != tt.stats {
				t.Errorf("stats = %+v, want %+v", s, tt.stats)
			}
			if got := srv.connections(); got != tt.conns {
				t.Errorf("connections = %d, want %d", got, tt.conns)
			}
			l := logs.String()
			if strings.Contains(l, "pw-s3cret") || !strings.Contains(l, tt.logLike) {
				t.Errorf("logs (want %q, no password): %s", tt.logLike, l)
			}
			msgs := srv.messages()
			if tt.stats.Sent == 0 {
				if len(msgs) != 0 {
					t.Errorf("server got %d messages", len(msgs))
				}
				return
			}
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			m := msgs[0]
			if m.tls != tt.wantTLS || (tt.auth && m.user != "alerts") {
				t.Errorf("tls, user = %v, %q", m.tls, m.user)
			}
			if m.from != "<liminal@example.com>" || strings.Join(m.to, " ") != "<ops@example.com> <data@example.com>" {
				t.Errorf("envelope: from %s to %v", m.from, m.to)
			}
			checkMessage(t, m.data)
		})
	}
}

// checkMessage checks the headers and body of the alert e-mail of
// sampleEvent.
func checkMessage(t *testing.T, data []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, data)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "[liminal] nightly failed (run 20260301T020000-ab12)" {
		t.Errorf("subject %q: %v", subject, err)
	}
	headers := map[string]string{
		"From":                      "Liminal <liminal@example.com>",
		"To":                        "ops@example.com, Data Team <data@example.com>",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"MIME-Version":              "1.0",
		"X-Liminal-Event":           "failure",
		"X-Liminal-Run-ID":          "20260301T020000-ab12",
	}
	for k, v := range headers {
		if got := msg.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("date: %v", err)
	}
	if id := msg.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@liminal>") {
		t.Errorf("message id %q", id)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := "liminal: nightly failed (run 20260301T020000-ab12)\r\n" +
		"\r\n" +
		"Pipeline:  nightly\r\n" +
		"Spec:      etl.yml\r\n" +
		"Run:       20260301T020000-ab12\r\n" +
		"Status:    failed\r\n" +
		"Error:     task \"score\": model input \"age\" <missing> & more\r\n" +
		"Started:   2026-03-01T02:00:00Z\r\n" +
		"Finished:  2026-03-01T02:12:03Z\r\n" +
		"Duration:  12m3s (SLA 45m0s)\r\n" +
		"\r\n" +
		"Tasks:\r\n" +
		"  load                 succeeded  1234 rows\r\n" +
		"  score                failed     0 rows  model input \"age\" not found\r\n" +
		"\r\n" +
		"Failed checks:\r\n" +
		"  - load: unique(id): 3 duplicate keys, e.g. 42\r\n"
	if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != strings.ReplaceAll(want, "\r\n", "\n") {
		t.Errorf("body:\n%s\nwant:\n%s", got, want)
	}
}

// TestEmailTimeout: a server that never greets costs one attempt timeout
// per attempt, then the delivery fails.
func TestEmailTimeout(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := newSMTPServer(t, func(s *smtpServer) { s.hang = true })
	var logs logBuffer
	opts := testOptions(&logs)
	opts.Timeout = 100 * time.Millisecond
	opts.MaxAttempts = 2
	n := New([]spec.Alert{{Email: &spec.Email{SMTP: srv.addr(), From: "a@example.com", To: []string{"b@example.com"}}}}, opts)
	start := time.Now()
	n.Notify(sampleEvent())
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("Notify took %v", d)
	}
	closeWithin(t, n, 10*time.Second)
	if s := n.Stats()[ChannelEmail]; s != (ChannelStats{Failed: 1, Retried: 1}) {
		t.Errorf("stats %+v", s)
	}
	if l := logs.String(); !strings.Contains(l, "no answer within 100ms: context deadline exceeded") {
		t.Errorf("logs: %s", l)
	}
	srv.close()
	noLeaks(t, before)
}

// TestEmailDotStuffing: body lines starting with a dot and non-ASCII text
// survive.
func TestEmailDotStuffing(t *testing.T) {
	srv := newSMTPServer(t, nil)
	n := New([]spec.Alert{{On: []string{"check_failure"}, Email: &spec.Email{SMTP: srv.addr(), From: "a@example.com", To: []string{"b@example.com"}}}}, Options{})
	ev := Event{Kind: KindCheckFailure, Pipeline: "café", RunID: "r1", Status: "succeeded",
		Error: "first\n.\n..dots\n", Checks: []string{"naïve ≠ ok"}}
	n.Notify(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(msgs[0].data)))
	if err != nil {
		t.Fatal(err)
	}
	var dec mime.WordDecoder
	if s, _ := dec.DecodeHeader(msg.Header.Get("Subject")); s != "[liminal] café failed data checks (run r1)" {
		t.Errorf("subject %q (raw %q)", s, msg.Header.Get("Subject"))
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	for _, want := range []string{"first\n.\n..dots\n", "  - naïve ≠ ok\n", "Pipeline:  café\n"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
}
