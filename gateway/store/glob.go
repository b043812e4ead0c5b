package store

import (
	"unicode"
	"unicode/utf8"
)

// matchGlob reports whether s matches pattern as a whole string. In pattern,
// '*' matches zero or more characters and '?' exactly one character. There is
// no escape and no character class. Characters are runes, compared
// case-insensitively under Unicode simple case folding. An invalid UTF-8 byte
// counts as one character, U+FFFD.
//
// The matcher keeps only the position of the last '*' and retries from there,
// which is enough for a language without classes and runs in O(len(pattern) *
// len(s)) time at worst without allocating.
func matchGlob(pattern, s string) bool {
	pi, si := 0, 0
	starPattern, starSubject := -1, -1

	for si < len(s) {
		if pi < len(pattern) {
			pr, pw := utf8.DecodeRuneInString(pattern[pi:])
			sr, sw := utf8.DecodeRuneInString(s[si:])
			if pr == '*' {
				starPattern, starSubject = pi+pw, si
				pi += pw
				continue
			}
			if pr == '?' || foldEqual(pr, sr) {
				pi += pw
				si += sw
				continue
			}
		}
		if starPattern < 0 {
			return false
		}

		// Let the last '*' absorb one more character and retry the rest.
		_, sw := utf8.DecodeRuneInString(s[starSubject:])
		starSubject += sw
		pi, si = starPattern, starSubject
	}

	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// foldEqual reports whether a and b are equal under Unicode simple case
// folding, the relation that strings.EqualFold uses.
func foldEqual(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return lowerASCII(a) == lowerASCII(b)
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func lowerASCII(r rune) rune {
	if 'A' <= r && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// globLiterals returns the number of characters of pattern that are neither
// '*' nor '?', and the number of '*'. Lookup uses both to rank glob entries.
func globLiterals(pattern string) (literals, stars int) {
	for _, r := range pattern {
		switch r {
		case '*':
			stars++
		case '?':
		default:
			literals++
		}
	}
	return literals, stars
}

// hasWildcard reports whether s contains '*' or '?'.
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}
