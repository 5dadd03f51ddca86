package spec

import (
	"fmt"
	"strings"
)

// LookupFunc returns the value of an environment variable and whether it is
// set, like os.LookupEnv.
type LookupFunc func(name string) (string, bool)

// expand replaces the references in s:
//
//	${VAR}          the value of VAR; an error when VAR is not set
//	${VAR:-default} the value of VAR, or default when VAR is unset or empty
//	$${             a literal "${"
//
// A "$" not followed by "{" is kept as is. It returns the expanded text,
// whether s held any reference, and one message per problem.
func expand(s string, lookup LookupFunc) (out string, used bool, problems []string) {
	if !strings.Contains(s, "${") {
		return s, false, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		used = true
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			problems = append(problems, `unterminated "${" (write "$${" for a literal "${")`)
			b.WriteString(s[i:])
			break
		}
		expr := s[i+2 : i+2+end]
		i += 2 + end + 1
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validVarName(name) {
			problems = append(problems, fmt.Sprintf("invalid environment variable name %q in \"${%s}\"", name, expr))
			continue
		}
		val, ok := lookup(name)
		switch {
		case ok && (val != "" || !hasDef):
			b.WriteString(val)
		case hasDef:
			b.WriteString(def)
		default:
			problems = append(problems, fmt.Sprintf("environment variable %q is not set", name))
		}
	}
	return b.String(), used, problems
}

// validVarName reports whether name is a shell-style variable name.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
