package connectors

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// SourceConfig configures a source; it mirrors the spec's sources entry.
type SourceConfig struct {
	Name    string
	URI     string
	Format  string
	Options map[string]string
	BaseDir string // relative local paths resolve against it
	Secret  string // password or token, from secret_env or secret_file; never logged
}

// SinkConfig configures a sink; it mirrors the spec's sinks entry.
type SinkConfig struct {
	Name         string
	URI          string
	Format       string
	Mode         Mode
	PartitionBy  []string
	Compression  string
	RowGroupSize int64
	Options      map[string]string
	BaseDir      string
	Secret       string
	// KeyColumns are the key of ModeUpsert.
	KeyColumns []string
}

// SourceFactory opens a source.
type SourceFactory func(ctx context.Context, c SourceConfig) (Source, error)

// SinkFactory opens a sink.
type SinkFactory func(ctx context.Context, c SinkConfig) (Sink, error)

var (
	mu      sync.RWMutex
	sources = map[string]SourceFactory{}
	sinks   = map[string]SinkFactory{}
)

// RegisterSource makes a source available for URIs of scheme ("file" for
// local paths). It panics on a duplicate, which is a programming error.
func RegisterSource(scheme string, f SourceFactory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sources[scheme]; dup {
		panic("connectors: duplicate source scheme " + scheme)
	}
	sources[scheme] = f
}

// RegisterSink makes a sink available for URIs of scheme.
func RegisterSink(scheme string, f SinkFactory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := sinks[scheme]; dup {
		panic("connectors: duplicate sink scheme " + scheme)
	}
	sinks[scheme] = f
}

// Scheme returns the URI scheme, "file" for local paths (including
// file:// URIs and Windows-style drive letters).
func Scheme(uri string) string {
	i := strings.Index(uri, "://")
	if i <= 0 {
		return "file"
	}
	s := strings.ToLower(uri[:i])
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return "file"
		}
	}
	return s
}

// OpenSource opens the source for c.URI through the registry.
func OpenSource(ctx context.Context, c SourceConfig) (Source, error) {
	scheme := Scheme(c.URI)
	mu.RLock()
	f, ok := sources[scheme]
	mu.RUnlock()
	if !ok {
		return nil, Permanent(fmt.Errorf("no source connector for %q URIs (this build has: %s)", scheme, known(sources)))
	}
	return f(ctx, c)
}

// OpenSink opens the sink for c.URI through the registry.
func OpenSink(ctx context.Context, c SinkConfig) (Sink, error) {
	scheme := Scheme(c.URI)
	mu.RLock()
	f, ok := sinks[scheme]
	mu.RUnlock()
	if !ok {
		return nil, Permanent(fmt.Errorf("no sink connector for %q URIs (this build has: %s)", scheme, known(sinks)))
	}
	return f(ctx, c)
}

func known[V any](m map[string]V) string {
	mu.RLock()
	defer mu.RUnlock()
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Redact removes a password from a URI for logs and errors.
func Redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil || u.User == nil {
		return uri
	}
	if _, has := u.User.Password(); !has {
		return uri // nothing to mask: the URI as written, not re-encoded
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return u.String()
}

// SafeName maps an id (run id, split id) to a string usable in file names:
// letters, digits, '-', '_' and '.' stay, anything else becomes '_'.
func SafeName(id string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '_'
	}, id)
}
