package network

import (
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	for _, tc := range []struct{ spec, name, ip, err string }{
		{"db:10.1.2.3", "db", "10.1.2.3", ""},
		{"db=10.1.2.3", "db", "10.1.2.3", ""},
		{"v6.example:fd00::1", "v6.example", "fd00::1", ""},
		{"v6=[::1]", "v6", "::1", ""},
		{"host.docker.internal:host-gateway", "host.docker.internal", "10.0.2.2", ""},
		{"db", "", "", "give NAME:IP"},
		{":10.1.2.3", "", "", "give NAME:IP"},
		{"db:", "", "", "give NAME:IP"},
		{"db:nowhere", "", "", "not an IP address"},
		{"-db:10.1.2.3", "", "", "not a host name"},
		{"a b:10.1.2.3", "", "", "not a host name"},
	} {
		name, ip, err := ParseHost(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
				t.Errorf("ParseHost(%q): %v, want one line with %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || ip.String() != tc.ip {
			t.Errorf("ParseHost(%q) = %q, %v, %v; want %q, %s", tc.spec, name, ip, err, tc.name, tc.ip)
		}
	}
}

func TestValidHostname(t *testing.T) {
	for name, want := range map[string]bool{
		"web": true, "web-1.example.com": true, "A1": true,
		"": false, "-web": false, "web-": false, "a..b": false, "web_1": false, strings.Repeat("a", 65): false,
	} {
		if ValidHostname(name) != want {
			t.Errorf("ValidHostname(%q) = %v", name, !want)
		}
	}
}
