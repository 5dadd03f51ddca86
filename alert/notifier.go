package alert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liminal-data/liminal/spec"
)

// Channels, as Stats names them.
const (
	ChannelWebhook = "webhook"
	ChannelSlack   = "slack"
	ChannelEmail   = "email"
)

// ErrDropped is wrapped by Close's error when deliveries were left undone.
var ErrDropped = errors.New("alert deliveries dropped")

// Options tune a Notifier; the zero value is usable.
type Options struct {
	// Logger receives one record per delivery outcome (default: discard).
	Logger *slog.Logger
	// HTTPClient posts webhooks (default: a client of the Notifier's own,
	// whose idle connections Close closes). Its own Timeout, if any,
	// applies besides Options.Timeout.
	HTTPClient *http.Client
	// MaxAttempts bounds the attempts of one delivery (default 5).
	MaxAttempts int
	// Backoff is the wait before the first retry (default 1s); it doubles
	// up to MaxBackoff (default 30s), with jitter.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Lookup reads environment variables (default os.Getenv): the SMTP
	// password named by password_env.
	Lookup func(string) string
	// TLSConfig is the base of the SMTP STARTTLS configuration (default:
	// the system roots); its ServerName is set to the server's host.
	TLSConfig *tls.Config
	// QueueSize bounds the events waiting for one alert (default 64);
	// Notify drops, logs and counts events beyond it.
	QueueSize int
}

// ChannelStats counts the deliveries of one channel.
type ChannelStats struct {
	// Sent deliveries succeeded, at some attempt.
	Sent int64 `json:"sent"`
	// Failed deliveries gave up: a permanent error, or MaxAttempts spent.
	Failed int64 `json:"failed"`
	// Retried counts attempts that failed and were tried again.
	Retried int64 `json:"retried"`
	// Dropped deliveries never finished: the queue was full, the Notifier
	// was closed, or Close's context ended first.
	Dropped int64 `json:"dropped"`
}

// Notifier delivers events to a pipeline's alerts. It is safe for
// concurrent use. A nil *Notifier is valid and does nothing, for
// pipelines without alerts.
type Notifier struct {
	opts    Options
	log     *slog.Logger
	client  *http.Client
	ownHTTP bool
	workers []*worker
	// ctx ends the deliveries in flight; cancel is called by Close.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	stats   map[string]*ChannelStats
	dropped []string // deliveries left undone at close, described
}

// worker delivers the events of one alert channel, in order.
type worker struct {
	name    string
	channel string
	on      []string
	send    func(ctx context.Context, ev Event) error
	queue   chan Event
}

// New returns a Notifier for alerts, and starts one goroutine per alert;
// Close stops them. An alert's events default to [failure].
func New(alerts []spec.Alert, opts Options) *Notifier {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.Backoff)
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Lookup == nil {
		opts.Lookup = os.Getenv
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 64
	}
	n := &Notifier{opts: opts, log: opts.Logger, client: opts.HTTPClient, stats: map[string]*ChannelStats{}}
	if n.client == nil {
		n.client = &http.Client{}
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			n.client.Transport = t.Clone()
			n.ownHTTP = true
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for i, a := range alerts {
		on := a.On
		if len(on) == 0 {
			on = []string{KindFailure}
		}
		add := func(channel string, send func(context.Context, Event) error) {
			name := a.Name
			if name == "" {
				name = fmt.Sprintf("%s#%d", channel, i+1)
			}
			n.workers = append(n.workers, &worker{name: name, channel: channel, on: on, send: send,
				queue: make(chan Event, opts.QueueSize)})
		}
		if a.Webhook != nil {
			add(ChannelWebhook, n.webhook(*a.Webhook))
		}
		if a.Slack != nil {
			add(ChannelSlack, n.slack(*a.Slack))
		}
		if a.Email != nil {
			add(ChannelEmail, n.email(*a.Email))
		}
	}
	for _, w := range n.workers {
		n.wg.Add(1)
		go n.run(w)
	}
	return n
}

// Notify queues ev for every alert whose events include ev.Kind, and
// returns at once: it never blocks, and delivery problems are logged and
// counted, never returned. Events after Close are dropped.
func (n *Notifier) Notify(ev Event) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, w := range n.workers {
		if !slices.Contains(w.on, ev.Kind) {
			continue
		}
		if n.closed {
			n.count(w.channel).Dropped++
			n.log.Warn("alert dropped: notifier closed", n.attrs(w, ev)...)
			continue
		}
		select {
		case w.queue <- ev:
		default:
			n.count(w.channel).Dropped++
			n.log.Warn("alert dropped: queue full", append(n.attrs(w, ev), "queue_size", n.opts.QueueSize)...)
		}
	}
}

// Close stops taking events and waits until the queued and in-flight
// deliveries are done or ctx ends; then it cancels what is left, waits for
// the goroutines to return, and returns an error wrapping ErrDropped that
// lists the deliveries left undone. Close is idempotent; later calls
// return nil.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	for _, w := range n.workers {
		close(w.queue)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
	}
	n.cancel()
	if n.ownHTTP {
		n.client.CloseIdleConnections()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.dropped) == 0 {
		return nil
	}
	list := n.dropped
	more := ""
	if len(list) > 10 {
		more = fmt.Sprintf(", and %d more", len(list)-10)
		list = list[:10]
	}
	return fmt.Errorf("%w at close: %d (%s%s)", ErrDropped, len(n.dropped), strings.Join(list, "; "), more)
}

// Stats returns the delivery counts by channel (webhook, slack, email),
// for metrics.
func (n *Notifier) Stats() map[string]ChannelStats {
	out := map[string]ChannelStats{}
	if n == nil {
		return out
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch, s := range n.stats {
		out[ch] = *s
	}
	return out
}

// run delivers w's events until its queue is closed and drained.
func (n *Notifier) run(w *worker) {
	defer n.wg.Done()
	for ev := range w.queue {
		if n.ctx.Err() != nil {
			n.drop(w, ev, 0)
			continue
		}
		n.deliver(w, ev)
	}
}

// deliver sends ev, retrying transient errors.
func (n *Notifier) deliver(w *worker, ev Event) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(n.ctx, n.opts.Timeout)
		err := w.send(actx, ev)
		cancel()
		attrs := append(n.attrs(w, ev), "attempt", attempt)
		if err == nil {
			n.mu.Lock()
			n.count(w.channel).Sent++
			n.mu.Unlock()
			n.log.Info("alert sent", attrs...)
			return
		}
		if n.ctx.Err() != nil {
			n.drop(w, ev, attempt)
			return
		}
		if isPermanent(err) || attempt >= n.opts.MaxAttempts {
			n.mu.Lock()
			n.count(w.channel).Failed++
			n.mu.Unlock()
			n.log.Error("alert failed", append(attrs, "permanent", isPermanent(err), "error", err.Error())...)
			return
		}
		wait := n.backoff(attempt, err)
		n.mu.Lock()
		n.count(w.channel).Retried++
		n.mu.Unlock()
		n.log.Warn("alert attempt failed, retrying", append(attrs, "error", err.Error(), "wait", wait)...)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.ctx.Done():
			t.Stop()
			n.drop(w, ev, attempt)
			return
		}
	}
}

// backoff is the wait after the given failed attempt: Backoff doubled per
// attempt, capped at MaxBackoff, jittered to between half and all of it;
// at least the server's Retry-After, within MaxBackoff.
func (n *Notifier) backoff(attempt int, err error) time.Duration {
	d := n.opts.Backoff
	for i := 1; i < attempt && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	if ra := retryAfter(err); ra > d {
		d = min(ra, n.opts.MaxBackoff)
	}
	return d
}

// drop records a delivery left undone because the Notifier is closing;
// Close reports it.
func (n *Notifier) drop(w *worker, ev Event, attempts int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.count(w.channel).Dropped++
	state := "queued"
	if attempts > 0 {
		state = fmt.Sprintf("interrupted at attempt %d", attempts)
	}
	n.dropped = append(n.dropped, fmt.Sprintf("%s %q: %s of run %s, %s", w.channel, w.name, ev.Kind, ev.RunID, state))
}

// count is the stats of channel; n.mu is held.
func (n *Notifier) count(channel string) *ChannelStats {
	s := n.stats[channel]
	if s == nil {
		s = &ChannelStats{}
		n.stats[channel] = s
	}
	return s
}

// attrs are the log attributes of one delivery.
func (n *Notifier) attrs(w *worker, ev Event) []any {
	return []any{"alert", w.name, "channel", w.channel, "event", ev.Kind, "pipeline", ev.Pipeline, "run_id", ev.RunID}
}
