package netparse

import "testing"

// TestIP checks the reading of Go 1.16's net.ParseIP.
func TestIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"192.0.2.01", "192.0.2.1"},
		{"010.000.002.0001", "10.0.2.1"},
		{"192.0.2.256", ""},
		{"192.0.2", ""},
		{"192.0.2.+1", ""},
		{" 192.0.2.1", ""},
		{"2001:db8::1", "2001:db8::1"},
		{"2001:DB8::00001", "2001:db8::1"},
		{"::ffff:192.0.2.01", "::ffff:192.0.2.1"},
		{"2001:db8::10000", ""},
		{"fe80::1%eth0", ""},
		{"2001:db8::0x1", ""},
		{"2001:db8::+1", ""},
		{"", ""},
	}
	for _, tt := range tests {
		a, ok := IP(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("IP(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCIDR checks the reading of Go 1.16's net.ParseCIDR.
func TestCIDR(t *testing.T) {
	tests := []struct{ in, want string }{
		{"10.244.0.0/16", "10.244.0.0/16"},
		{"010.244.0.0/16", "10.244.0.0/16"},
		{"10.244.0.1/16", "10.244.0.1/16"},
		{"10.244.0.0/016", "10.244.0.0/16"},
		{"10.244.0.0/33", ""},
		{"10.244.0.0", ""},
		{"10.244.0.0/", ""},
		{"10.244.0.0/-1", ""},
		{" 10.244.0.0/16", ""},
		{"fd00::/48", "fd00::/48"},
		{"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"},
		{"fd00::/129", ""},
	}
	for _, tt := range tests {
		p, ok := CIDR(tt.in)
		got := ""
		if ok {
			got = p.String()
		}
		if got != tt.want {
			t.Errorf("CIDR(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
