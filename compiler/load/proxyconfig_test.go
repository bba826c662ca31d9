package load

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestKubeProxyConfigChecks checks the configurations kube-proxy refuses
// to start with (its validation.Validate), each at its field, and that
// those it takes load.
func TestKubeProxyConfigChecks(t *testing.T) {
	const head = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
	tests := []struct {
		name, in string
		want     []string
	}{{
		name: "kubeadm's configuration",
		in: head + "bindAddress: 0.0.0.0\nclusterCIDR: 10.244.0.0/16,fd00:244::/56\nconfigSyncPeriod: 0s\n" +
			"conntrack: {maxPerCore: null, min: null, tcpCloseWaitTimeout: null, tcpEstablishedTimeout: null}\n" +
			"healthzBindAddress: \"\"\nmode: \"\"\nnodePortAddresses: null\noomScoreAdj: null\n",
	}, {
		name: "a negative configSyncPeriod",
		in:   head + "configSyncPeriod: -1m\n",
		want: []string{`-:3:19: configSyncPeriod: invalid value "-1m": must be greater than 0`},
	}, {
		name: "what kube-proxy reads sloppily",
		in:   head + "bindAddress: 192.0.2.011\nclusterCIDR: 010.244.0.0/16\nnodePortAddresses: [192.0.2.011/32, '2001:db8::/64']\n",
	}, {
		name: "nftables.masqueradeBit outside nftables mode",
		in:   head + "mode: iptables\nnftables: {masqueradeBit: 40}\n",
	}, {
		name: "nftables.masqueradeBit in nftables mode",
		in:   head + "mode: nftables\nnftables: {masqueradeBit: 40}\n",
		want: []string{"-:4:27: nftables.masqueradeBit: invalid value 40: must be within the range [0, 31]"},
	}, {
		name: "clusterCIDR: three ranges, one family twice, a space, a trailing comma",
		in: head + "clusterCIDR: 10.244.0.0/16,10.245.0.0/16,fd00::/48\n---\n" + head + "clusterCIDR: 10.244.0.0/16,10.245.0.0/16\n---\n" +
			head + "clusterCIDR: '10.244.0.0/16, fd00::/48'\n---\n" + head + "clusterCIDR: '10.244.0.0/16,'\n",
		want: []string{
			`-:3:14: clusterCIDR: invalid value "10.244.0.0/16,10.245.0.0/16,fd00::/48": must be one CIDR or a dual-stack pair of CIDRs (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)`,
			`-:7:14: clusterCIDR: invalid value "10.244.0.0/16,10.245.0.0/16": must be one CIDR or a dual-stack pair of CIDRs (e.g. 10.100.0.0/16,fde4:8dba:82e1::/48)`,
			`-:11:14: clusterCIDR: invalid value "10.244.0.0/16, fd00::/48": " fd00::/48" must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)`,
			`-:15:14: clusterCIDR: invalid value "10.244.0.0/16,": "" must be a valid CIDR block (e.g. 10.100.0.0/16 or fde4:8dba:82e1::/48)`,
		},
	}, {
		name: "clusterCIDR is not read by another detector",
		in:   head + "detectLocalMode: NodeCIDR\nclusterCIDR: 10.244.0.0/16,10.245.0.0/16\n",
	}, {
		name: "nodePortAddresses: primary with CIDRs, a CIDR with a space",
		in:   head + "nodePortAddresses: [192.0.2.0/24, primary]\n---\n" + head + "nodePortAddresses: [' 192.0.2.0/24', 192.0.2.1]\n",
		want: []string{
			`-:3:35: nodePortAddresses[1]: invalid value "primary": can't use both 'primary' and CIDRs`,
			`-:7:21: nodePortAddresses[0]: invalid value " 192.0.2.0/24": must be a valid CIDR`,
			`-:7:38: nodePortAddresses[1]: invalid value "192.0.2.1": must be a valid CIDR`,
		},
	}, {
		name: "conntrack",
		in:   head + "conntrack: {maxPerCore: -1, min: -1, tcpEstablishedTimeout: -5s, tcpCloseWaitTimeout: 1h, udpTimeout: abc, udpStreamTimeout: -1s}\n",
		want: []string{
			"-:3:25: conntrack.maxPerCore: invalid value -1: must be greater than or equal to 0",
			"-:3:34: conntrack.min: invalid value -1: must be greater than or equal to 0",
			`-:3:61: conntrack.tcpEstablishedTimeout: invalid value "-5s": must be greater than or equal to 0`,
			`-:3:103: conntrack.udpTimeout: invalid value "abc": must be a duration such as 30s or 1h0m0s (kube-proxy cannot decode it)`,
			`-:3:126: conntrack.udpStreamTimeout: invalid value "-1s": must be greater than or equal to 0`,
		},
	}, {
		name: "an interface detector without its interface",
		in:   head + "detectLocalMode: BridgeInterface\n---\n" + head + "detectLocalMode: InterfaceNamePrefix\ndetectLocal: {interfaceNamePrefix: veth}\n",
		want: []string{"-:3:18: detectLocal.bridgeInterface: required value: detectLocalMode BridgeInterface needs it (kube-proxy refuses an empty one)"},
	}, {
		name: "an interface no rule can match",
		in: head + "detectLocalMode: BridgeInterface\ndetectLocal: {bridgeInterface: br/0, interfaceNamePrefix: a-very-long-name-for-a-bridge}\n---\n" +
			head + "detectLocalMode: InterfaceNamePrefix\ndetectLocal: {interfaceNamePrefix: a-very-long-name-for-a-bridge}\n---\n" +
			head + "detectLocalMode: InterfaceNamePrefix\ndetectLocal: {interfaceNamePrefix: cali.0@x_-}\n---\n" +
			head + "detectLocalMode: InterfaceNamePrefix\ndetectLocal: {interfaceNamePrefix: abcdefghijklmno}\n---\n" +
			head + "detectLocalMode: BridgeInterface\ndetectLocal: {bridgeInterface: abcdefghijklmno}\n",
		want: []string{
			`-:4:32: detectLocal.bridgeInterface: invalid value "br/0": kpc matches interface names of letters, digits and "-_.@" only, not '/' (a limit of kpc's, which writes every name unquoted)`,
			`-:9:36: detectLocal.interfaceNamePrefix: invalid value "a-very-long-name-for-a-bridge": an interface name has at most 15 bytes, so no rule can match it (kube-proxy's would not load)`,
			`-:19:36: detectLocal.interfaceNamePrefix: invalid value "abcdefghijklmno": a prefix of interface names has at most 14 bytes: nft and iptables spell it with a wildcard (abcdefghijklmno* and abcdefghijklmno+), in 15 characters at most (kube-proxy's rules would not load)`,
		},
	}, {
		name: "bindAddress, oomScoreAdj, clientConnection.burst",
		in:   head + "bindAddress: 10.10.12.11:2000\noomScoreAdj: -1001\nclientConnection: {burst: -1}\n",
		want: []string{
			`-:3:14: bindAddress: invalid value "10.10.12.11:2000": not a valid textual representation of an IP address`,
			"-:4:14: oomScoreAdj: invalid value -1001: must be within the range [-1000, 1000]",
			"-:5:27: clientConnection.burst: invalid value -1: must be greater than or equal to 0",
		},
	}, {
		name: "sync periods of the mode's section",
		in: head + "iptables: {minSyncPeriod: 1m, syncPeriod: 30s}\n---\n" + head + "iptables: {minSyncPeriod: 1m}\n---\n" +
			head + "mode: nftables\niptables: {minSyncPeriod: 1m}\nnftables: {syncPeriod: -1s, minSyncPeriod: -1s}\n---\n" +
			head + "iptables: {minSyncPeriod: 0s, syncPeriod: 0s}\n",
		want: []string{
			"-:3:43: iptables.syncPeriod: invalid value 30s: must be greater than or equal to iptables.minSyncPeriod (1m0s)",
			"-:7:27: iptables.syncPeriod: invalid value 30s: must be greater than or equal to iptables.minSyncPeriod (1m0s)",
			`-:13:24: nftables.syncPeriod: invalid value "-1s": must be greater than 0`,
			`-:13:44: nftables.minSyncPeriod: invalid value "-1s": must be greater than or equal to 0`,
		},
	}, {
		name: "what kube-proxy cannot decode: numbers beyond int32, quoted numbers, durations that are not strings",
		in: head + "oomScoreAdj: 99999999999999999999\nclientConnection: {burst: '5', qps: 1e39}\nconfigSyncPeriod: 900\n" +
			"nftables: {masqueradeBit: 4294967296}\nconntrack: {min: -3000000000, udpTimeout: 30}\n",
		want: []string{
			"-:3:14: oomScoreAdj: invalid value 1e+20: must be an integer",
			`-:4:27: clientConnection.burst: invalid value "5": must be an integer`,
			"-:4:37: clientConnection.qps: invalid value 1e39: must be less than or equal to 340282346638528859811704183484516925440",
			"-:5:19: configSyncPeriod: invalid value 900: must be a string",
			"-:6:27: nftables.masqueradeBit: invalid value 4294967296: must be less than or equal to 2147483647",
			"-:7:18: conntrack.min: invalid value -3000000000: must be greater than or equal to -2147483648",
			"-:7:43: conntrack.udpTimeout: invalid value 30: must be a string",
		},
	}, {
		name: "durations of other sections decode; the IPVS timeouts are checked in ipvs mode",
		in: head + "nftables: {syncPeriod: x, minSyncPeriod: -1s}\nipvs: {tcpTimeout: -1s, tcpFinTimeout: z}\n---\n" +
			head + "mode: ipvs\nipvs: {tcpTimeout: -1s, udpTimeout: 30s}\n",
		want: []string{
			`-:3:24: nftables.syncPeriod: invalid value "x": must be a duration such as 30s or 1h0m0s (kube-proxy cannot decode it)`,
			`-:4:40: ipvs.tcpFinTimeout: invalid value "z": must be a duration such as 30s or 1h0m0s (kube-proxy cannot decode it)`,
			`-:9:20: ipvs.tcpTimeout: invalid value "-1s": must be greater than or equal to 0`,
		},
	}, {
		name: "mode kernelspace, Windows's",
		in:   head + "mode: kernelspace\n",
		want: []string{`-:3:7: mode: unsupported value "kernelspace": must be one of "iptables", "ipvs", "nftables" or blank (iptables): kube-proxy on Linux refuses another`},
	}}
	for _, tt := range tests {
		_, diags := Load([]string{"-"}, strings.NewReader(tt.in), Options{})
		var got []string
		for _, d := range diags {
			if d.Object != "KubeProxyConfiguration" {
				continue
			}
			got = append(got, d.Pos.String()+": "+d.Path+": "+d.Msg)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
