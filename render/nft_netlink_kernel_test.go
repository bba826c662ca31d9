//go:build linux

package render_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/internal/nstest"
	"kpc/render/netlink"
)

// The numbered maps' declaration, as the text declares it and as the
// netlink backend's table lists (google/nftables cannot write the typeof
// userdata, so nft 1.0.6 prints the integer key as "0"; see package
// netlink).
var (
	nftTypeofLine = regexp.MustCompile(`(?m)^(\s*)typeof numgen random mod 1 : (?:verdict|ip6? daddr \. th dport)$`)
	nftTypeZero   = regexp.MustCompile(`(?m)^(\s*)type 0 : (?:verdict|ipv[46]_addr \. inet_service)$`)
)

// nftNetlinkNormalize is nftNormalize that also spells both forms of a
// numbered map's declaration the same way, keeping the data type.
func nftNetlinkNormalize(listing string) string {
	listing = nftTypeofLine.ReplaceAllStringFunc(listing, func(s string) string {
		m := nftTypeofLine.FindStringSubmatch(s)
		data := "verdict"
		switch {
		case strings.Contains(s, "ip6 daddr"):
			data = "ipv6_addr . inet_service"
		case strings.Contains(s, "ip daddr"):
			data = "ipv4_addr . inet_service"
		}
		return m[1] + "<numgen map> : " + data
	})
	listing = nftTypeZero.ReplaceAllStringFunc(listing, func(s string) string {
		m := nftTypeZero.FindStringSubmatch(s)
		return m[1] + "<numgen map> : " + s[len(m[1])+len("type 0 : "):]
	})
	return nstest.SortElements(listing)
}

// TestNFTNetlinkKernel applies every rendering case through the netlink
// backend and checks that the kernel then lists the same ruleset as after
// "nft -f" of the case's text (up to the numbered maps' declaration), and
// that netlink.Compare finds no drift on either table.
func TestNFTNetlinkKernel(t *testing.T) {
	nstest.Require(t, "nft")
	for _, c := range nftCases() {
		t.Run(c.name, func(t *testing.T) {
			var script bytes.Buffer
			if err := c.r.Render(&script, c.p); err != nil {
				t.Fatal(err)
			}
			textNS := nstest.New(t, "kpcnft")
			if _, err := nstest.Exec(textNS, script.String(), "nft", "-f", "-"); err != nil {
				t.Fatal(err)
			}
			want := nftNetlinkNormalize(nstest.Run(t, textNS, "", "nft", "list", "ruleset"))
			nlNS := nstest.New(t, "kpcnft")
			o := netlink.Options{NetNS: "/var/run/netns/" + nlNS, EndpointChains: c.r.EndpointChains}
			if _, err := netlink.Apply(c.p, o); err != nil {
				t.Fatalf("netlink.Apply: %v", err)
			}
			if got := nftNetlinkNormalize(nstest.Run(t, nlNS, "", "nft", "list", "ruleset")); got != want {
				t.Errorf("netlink listing differs from nft -f listing (-nft +netlink):\n%s", cmp.Diff(want, got))
			}
			for _, ns := range []string{nlNS, textNS} {
				o.NetNS = "/var/run/netns/" + ns
				d, err := netlink.Compare(c.p, o)
				if err != nil {
					t.Fatal(err)
				}
				if !d.Equal() {
					t.Errorf("netlink.Compare in %s reports drift:\n%s", ns, d)
				}
			}
		})
	}
}
