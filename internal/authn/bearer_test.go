package authn

import "testing"

// TestBearerToken: the Authorization scheme is case-insensitive; anything
// else is no token.
func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc"} {
		if got, ok := BearerToken(h); !ok || got != want {
			t.Errorf("%q: %q %t, want %q", h, got, ok, want)
		}
	}
	for _, h := range []string{"", "Basic abc", "Bearer", "Bearerabc"} {
		if _, ok := BearerToken(h); ok {
			t.Errorf("%q: accepted", h)
		}
	}
}
