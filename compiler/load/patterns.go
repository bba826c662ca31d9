package load

import "strings"

// The name patterns of Kubernetes objects, matched without regexp. Each
// function reports exactly what its pattern's regexp reports (see
// TestPatternMatchers). Names, label keys and label values are checked for
// every document; with regexp, that took 6.7% of a load's CPU.

// rfc1123Part reports whether s matches ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$:
// one or more of a-z, 0-9 and '-', starting and ending with a letter or
// digit.
func rfc1123Part(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// rfc1123Subdomain reports whether s matches
// ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$: parts
// that each match rfc1123Part, joined by dots.
func rfc1123Subdomain(s string) bool {
	for {
		part, rest, more := strings.Cut(s, ".")
		if !rfc1123Part(part) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// nameBody reports whether s matches ^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$:
// one or more of letters, digits, '-', '_' and '.', starting and ending
// with a letter or digit.
func nameBody(s string) bool {
	if s == "" || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// alnum reports whether c is an ASCII letter or digit.
func alnum(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' }

// patternMatchers holds the patterns of the schema that have a matcher
// here, by their text.
var patternMatchers = map[string]func(string) bool{
	// #DNSLabel, #OptDNSLabel
	`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`:    func(s string) bool { return len(s) <= 63 && rfc1123Part(s) },
	`^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$`: func(s string) bool { return s == "" || len(s) <= 63 && rfc1123Part(s) },
	// #DNSSubdomain (its length is a constraint of its own)
	`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`: rfc1123Subdomain,
	// #LabelValue
	`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`: func(s string) bool { return s == "" || len(s) <= 63 && nameBody(s) },
	// #qualifiedNameRE
	`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`: func(s string) bool {
		prefix, name, hasPrefix := strings.Cut(s, "/")
		if !hasPrefix {
			name = prefix
		} else if !rfc1123Subdomain(prefix) {
			return false
		}
		return len(name) <= 63 && nameBody(name)
	},
}
