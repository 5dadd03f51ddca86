package connectors

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
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
	// Protect lists paths that an overwrite must never remove: the run's
	// sources, the state directory. A sink whose target holds one of them
	// is refused.
	Protect []string
	// Force lets an overwrite replace output that Liminal did not write
	// (a non-empty directory without its _SUCCESS manifest): the user's
	// explicit --force-overwrite.
	Force bool
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

// LocalPath returns the local file-system path a source URI reads (the
// part before any glob, relative to baseDir), or "" for a URI of another
// scheme: what an overwrite must not remove.
func LocalPath(uri, baseDir string) string {
	if Scheme(uri) != "file" {
		return ""
	}
	p := strings.TrimPrefix(uri, "file://")
	if i := strings.IndexAny(p, "*?[{"); i >= 0 {
		p = filepath.Dir(p[:i] + "x")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	return filepath.Clean(p)
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
	out := uri
	// The userinfo is whatever lies between "://" and the last "@", parsed
	// or not: a password with '/', '#', '%' or a space makes url.Parse fail
	// or cut the URI elsewhere, and it must not leak then either.
	if i := strings.Index(out, "://"); i >= 0 {
		rest := out[i+3:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if c := strings.IndexByte(rest[:at], ':'); c >= 0 {
				out = out[:i+3] + rest[:c] + ":" + mask + rest[at:]
			}
		}
	}
	return secretParam.ReplaceAllString(out, "${1}"+mask)
}

// mask stands in for a secret in every output.
const mask = "xxxxx"

// secretParam matches query or DSN parameters that carry a secret.
var secretParam = regexp.MustCompile(`(?i)((?:^|[?&;\s])(?:password|passwd|pwd|secret|token|access_key|secret_key|sslpassword)=)[^&;\s]*`)

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
