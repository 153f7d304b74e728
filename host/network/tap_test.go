package network

import (
	"strings"
	"testing"
)

func TestParseNumbering(t *testing.T) {
	n, err := ParseNumbering("10.9.0.2/24", "10.9.0.1")
	if err != nil || n.Address.String() != "10.9.0.2/24" || n.Gateway.String() != "10.9.0.1" {
		t.Errorf("ParseNumbering: %+v, %v", n, err)
	}
	if mac := n.MAC(); mac != [6]byte{0x02, 'p', 10, 9, 0, 2} {
		t.Errorf("MAC: % x", mac)
	}
	if n, err := ParseNumbering("10.9.0.2/24", ""); err != nil || n.Gateway.IsValid() {
		t.Errorf("no gateway: %+v, %v", n, err)
	}
	for _, tc := range []struct{ ip, gw, want string }{
		{"10.9.0.2", "", "address and prefix length"},
		{"fd00::2/64", "", "address and prefix length"},
		{"10.9.0.2/32", "", "address and prefix length"},
		{"10.9.0.2/24", "10.9.1.1", "on the guest's subnet 10.9.0.0/24"},
		{"10.9.0.2/24", "10.9.0.2", "not its own"},
		{"10.9.0.2/24", "gw", "on the guest's subnet"},
	} {
		if _, err := ParseNumbering(tc.ip, tc.gw); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseNumbering(%q, %q): %v; want an error containing %q", tc.ip, tc.gw, err, tc.want)
		}
	}
}

func TestOpenTapRefusesWhatIsNoTap(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"pith-no-such0", "no such network device; create it first: ip tuntap add pith-no-such0 mode tap"},
		{"lo", "is not a tap"},
		{"", "1 to 15 characters"},
		{"a-name-far-too-long", "1 to 15 characters"},
	} {
		f, _, err := OpenTap(tc.name)
		if err == nil {
			f.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("OpenTap(%q): %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
}
