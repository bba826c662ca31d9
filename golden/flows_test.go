package golden

import (
	"net/netip"
	"testing"
)

// TestResolveFromNode checks which sources are the node itself: "node", a
// node address and a loopback address (localhost NodePorts); a client and a
// pod are not.
func TestResolveFromNode(t *testing.T) {
	nodeIPs := []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("2001:db8::1")}
	for _, tc := range []struct {
		from, to string
		src      string
		fromNode bool
	}{
		{"node", "10.96.0.1:80/tcp", "192.168.0.2", true},
		{"node", "[fd00::1]:80/tcp", "2001:db8::1", true},
		{"192.168.0.2", "192.168.0.2:30001/tcp", "192.168.0.2", true},
		{"127.0.0.1", "127.0.0.1:30001/tcp", "127.0.0.1", true},
		{"::1", "[::1]:30001/tcp", "::1", true},
		{"203.0.113.2", "192.168.0.2:30001/tcp", "203.0.113.2", false},
		{"1.2.3.4", "1.2.3.4:80/tcp", "1.2.3.4", false},
	} {
		f := Flow{Name: tc.from + " to " + tc.to, From: tc.from, To: tc.to}
		pkt, err := f.Resolve(nodeIPs)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if pkt.Src != netip.MustParseAddr(tc.src) || pkt.FromNode != tc.fromNode {
			t.Errorf("%s: source %s, from the node %v; want %s, %v", f.Name, pkt.Src, pkt.FromNode, tc.src, tc.fromNode)
		}
		if pkt.Node != (tc.from == "node") {
			t.Errorf("%s: Node %v, want %v", f.Name, pkt.Node, tc.from == "node")
		}
	}
}
