package cli

import "testing"

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"256m", 256 << 20, true},
		{"256M", 256 << 20, true},
		{"1g", 1 << 30, true},
		{"65536k", 64 << 20, true},
		{"33m", 34 << 20, true}, // rounded up to 2 MiB
		{"67108864", 64 << 20, true},
		{"16m", 0, false},
		{"lots", 0, false},
		{"12x", 0, false},
		{"", 0, false},
	} {
		got, err := parseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}
