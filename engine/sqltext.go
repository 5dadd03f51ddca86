package engine

import "strings"

// TrimStatement returns q without a trailing semicolon and without the
// comments and blanks around it, so that a statement pasted as written
// (TPC-H texts end in ";", users end theirs with "-- comment") can be
// embedded in COPY (...) TO or a subquery. Strings, quoted identifiers,
// dollar-quoted strings and comments are skipped while looking for the
// last token; what precedes it is kept byte for byte.
func TrimStatement(q string) string {
	end := 0 // the end of the last token that is not a ';'
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j + 1
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return q // an unterminated comment: leave it to DuckDB's error
			}
			i += j + 4
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			if j >= len(q) {
				return q
			}
			i = j + 1
			end = i
		case c == '$':
			// $tag$ ... $tag$ (a dollar-quoted string) or a parameter $1.
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			if j < len(q) && q[j] == '$' {
				tag := q[i : j+1]
				k := strings.Index(q[j+1:], tag)
				if k < 0 {
					return q
				}
				i = j + 1 + k + len(tag)
			} else {
				i = j
			}
			end = i
		case c == ';':
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		default:
			i++
			end = i
		}
	}
	return q[:end]
}
