package authn

import "strings"

// BearerToken is the token of an Authorization header value; the scheme is
// case-insensitive (RFC 9110: "bearer", "BEARER" are Bearer).
func BearerToken(h string) (string, bool) {
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(h[7:]), true
}
