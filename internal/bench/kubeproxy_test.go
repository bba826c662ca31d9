package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestKubeProxyNFT checks the reference layout's shape on a small mixed
// cluster and, as root with nft, that the kernel accepts it (in a network
// namespace of its own). Under CI the kernel check must run.
func TestKubeProxyNFT(t *testing.T) {
	p, err := Program(t.TempDir(), Shape{Services: 60, Endpoints: 3})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := KubeProxyNFT(&b, p); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"add table ip kube-proxy", "add table ip6 kube-proxy",
		"numgen random mod 3 vmap { 0 : goto endpoint-", "meta l4proto tcp dnat to 10.128.",
		"add element ip kube-proxy service-ips {", "add element ip kube-proxy service-nodeports {",
		"add element ip kube-proxy firewall-ips {", "flags dynamic,timeout",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(text, "endpoint-choice") || strings.Contains(text, "@endpoints-") {
		t.Error("output uses kpc's named choice maps")
	}
	var again bytes.Buffer
	if err := KubeProxyNFT(&again, p); err != nil || again.String() != text {
		t.Errorf("second rendering differs (err %v)", err)
	}

	nft, err := exec.LookPath("nft")
	if err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: the kernel check needs root and nft (nft: %v)", err)
		}
		t.Skip("kernel check needs root and nft")
	}
	ns := fmt.Sprintf("kpcb-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "delete", ns).Run()
	cmd := exec.Command("ip", "netns", "exec", ns, nft, "-f", "-")
	cmd.Stdin = &b
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %.3000s", err, out)
	}
	out, err := exec.Command("ip", "netns", "exec", ns, nft, "list", "chains").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list chains: %v: %s", err, out)
	}
	if n := strings.Count(string(out), "chain endpoint-"); n < 100 {
		t.Errorf("%d endpoint chains loaded, want at least 100", n)
	}
}
