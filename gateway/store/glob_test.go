package store

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		subject string
		want    bool
	}{
		{"empty matches empty", "", "", true},
		{"empty rejects text", "", "a", false},
		{"star matches empty", "*", "", true},
		{"star matches anything", "*", "hs1.example.org", true},
		{"literal equal", "example.org", "example.org", true},
		{"literal differs", "example.org", "example.net", false},
		{"literal is whole string", "example.org", "hs1.example.org", false},
		{"literal prefix only", "example", "example.org", false},
		{"star dot suffix", "*.example.org", "hs1.example.org", true},
		{"star spans labels", "*.example.org", "a.b.example.org", true},
		{"star dot rejects bare domain", "*.example.org", "example.org", false},
		{"star dot rejects other domain", "*.example.org", "hs1.example.org.evil", false},
		{"star dot rejects lookalike", "*.example.org", "hs1example.org", false},
		{"star in middle", "hs*.example.org", "hs42.example.org", true},
		{"star in middle empty", "hs*.example.org", "hs.example.org", true},
		{"star at end", "hs1.*", "hs1.example.org", true},
		{"two stars", "*.*.org", "a.b.org", true},
		{"two stars need two dots", "*.*.org", "a.org", false},
		{"backtracking", "*a*b", "aaab", true},
		{"backtracking fails", "*a*b", "aaac", false},
		{"question one char", "hs?.example.org", "hs1.example.org", true},
		{"question not zero chars", "hs?.example.org", "hs.example.org", false},
		{"question not two chars", "hs?.example.org", "hs12.example.org", false},
		{"question and star", "?*", "", false},
		{"question and star one", "?*", "x", true},
		{"case folded subject", "example.org", "EXAMPLE.ORG", true},
		{"case folded pattern", "*.EXAMPLE.org", "hs1.example.ORG", true},
		{"unicode literal", "bücher.example", "bücher.example", true},
		{"unicode case", "BÜCHER.example", "bücher.example", true},
		{"question matches one rune", "b?cher", "bücher", true},
		{"question is not one byte", "b??cher", "bücher", false},
		{"kelvin sign folds to k", "k", "\u212a", true},
		{"long s folds to s", "s", "\u017f", true},
		{"sigma forms fold", "σ", "ς", true},
		{"ipv6 literal", "[::1]", "[::1]", true},
		{"ipv6 with port literal", "[::1]:8448", "[::1]:8448", true},
		{"ipv6 port differs", "[::1]:8448", "[::1]:8449", false},
		{"ipv6 glob", "[2001:db8::*]", "[2001:db8::1]", true},
		{"port glob", "*:8448", "hs1.example.org:8448", true},
		{"port glob other port", "*:8448", "hs1.example.org:8449", false},
		{"invalid byte counts as one char", "a?b", "a\xffb", true},
		{"literal invalid byte", "a\xffb", "a\xfeb", true},
		{"many stars", strings.Repeat("*", 50) + "x", strings.Repeat("a", 100), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matchGlob(tt.pattern, tt.subject); got != tt.want {
				t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.subject, got, tt.want)
			}
		})
	}
}

func TestGlobLiterals(t *testing.T) {
	tests := []struct {
		pattern      string
		wantLiterals int
		wantStars    int
	}{
		{"", 0, 0},
		{"*", 0, 1},
		{"*.example.org", 12, 1},
		{"hs?.example.org:8448", 19, 0},
		{"*.*.ü", 3, 2},
	}
	for _, tt := range tests {
		literals, stars := globLiterals(tt.pattern)
		if literals != tt.wantLiterals || stars != tt.wantStars {
			t.Errorf("globLiterals(%q) = %d, %d, want %d, %d", tt.pattern, literals, stars, tt.wantLiterals, tt.wantStars)
		}
	}
}

// globRegexp translates a glob into an equivalent regular expression, the
// reference that FuzzGlobMatch compares matchGlob with.
func globRegexp(pattern string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`(?is)\A`)
	for _, r := range pattern {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`\z`)
	return regexp.Compile(b.String())
}

func FuzzGlobMatch(f *testing.F) {
	seeds := [][2]string{
		{"*.example.org", "hs1.example.org"},
		{"hs?.example.org", "hs1.example.org"},
		{"*a*b*c", "xaybzc"},
		{"", ""},
		{"?", "ü"},
		{"K", "\u212a"},
		{"[::1]:8448", "[::1]:8448"},
		{"a\xffb", "a\xfeb"},
	}
	for _, seed := range seeds {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, subject string) {
		got := matchGlob(pattern, subject)

		if !hasWildcard(pattern) && strings.EqualFold(pattern, subject) && !got {
			t.Fatalf("matchGlob(%q, %q) = false for equal strings", pattern, subject)
		}
		// The regexp reference gets slow on long inputs with many stars.
		short := len(pattern) <= 64 && len(subject) <= 256
		if short && utf8.ValidString(pattern) && utf8.ValidString(subject) {
			re, err := globRegexp(pattern)
			if err != nil {
				t.Fatalf("compile reference for %q: %v", pattern, err)
			}
			if want := re.MatchString(subject); got != want {
				t.Fatalf("matchGlob(%q, %q) = %v, reference regexp %s = %v", pattern, subject, got, re, want)
			}
		}
	})
}
