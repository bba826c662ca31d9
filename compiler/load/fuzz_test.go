package load

import (
	"bytes"
	"strings"
	"testing"

	"kpc/compiler/api"
	"kpc/compiler/diag"
)

// FuzzLoad feeds arbitrary bytes to Load as standard input (read as JSON
// when it starts with '{' or '[', unless it is not JSON but YAML; as YAML
// otherwise), in default and strict mode, each judged as a create (kpc
// validate) and read as kube-proxy reads it (the commands that compile).
// Load must not panic, must not report an internal error, must return
// sorted diagnostics, every object it returns must come from stdin, and it
// must name invalid documents exactly when it reports errors; CrossCheck
// must not panic on what it returns.
// Inputs are capped at 64 KiB to keep each run bounded.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(svc("ports: [{name: http, port: 80, targetPort: 9376}]\n")))
	f.Add([]byte(slice("addressType: IPv4\nports: [{name: http, port: 9376}]\nendpoints: [{addresses: [10.4.5.6]}]\n")))
	f.Add([]byte(`{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 80}]}}]}`))
	f.Add([]byte("a: &a {k: 1}\nb: {<<: [*a, *a]}\n"))
	f.Add([]byte("---\n---\n- 1\n---\nfoo\n"))
	f.Add([]byte(svc("ports: [{name: h\u00e9, port: 80}]\n") + "---\n" + svc("ports:\r\n- port: 0\r\n") + "...\n---\na: >\n  b\n"))
	f.Add(utf16Text(svc("ports: [{port: 80}]\n"), false))
	f.Add([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata:\n  config.conf: |\n    kind: KubeProxyConfiguration\n    apiVersion: kubeproxy.config.k8s.io/v1alpha1\n    clusterCIDR: [1]\n"))
	f.Add([]byte("apiVersion: v1\nkind: Endpoints\nmetadata: {name: a}\nsubsets:\n- addresses: [{ip: 10.4.5.6, nodeName: n}]\n  notReadyAddresses: [{ip: \"::1\"}]\n  ports: [{port: 80}, {name: b, port: 0}]\n"))
	f.Add([]byte("{\r\n  \"apiVersion\": \"v1\",\r\n  \"kind\": \"Service\",\r\n  \"metadata\": {\"name\": \"a\"},\r\n  \"spec\": {\"ports\": [{\"port\": 8"))
	f.Add([]byte("{apiVersion: v1, kind: Service, metadata: {name: a}, spec: {ports: [{port: 80}]}}\n---\n[1, {a: b},]\n"))
	f.Add([]byte(svc("clusterIP: 172.30.0.041\nexternalIPs: ['::ffff:192.0.2.7']\nloadBalancerSourceRanges: [' 203.0.113.000/025']\nports: [{port: 80}]\n") +
		"---\n" + slice("addressType: IPv6\nports: [{port: 80}]\nendpoints: [{addresses: ['FD00::01']}]\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		for _, opts := range []Options{{}, {KubeProxy: true}, {Strict: true}, {Strict: true, KubeProxy: true}} {
			in, diags := Load([]string{"-"}, bytes.NewReader(data), opts)
			if in == nil {
				t.Fatal("nil input")
			}
			for i, d := range diags {
				if strings.Contains(d.Msg, "internal error") {
					t.Errorf("internal error: %v", d)
				}
				if d.Pos.File != stdinName {
					t.Errorf("diagnostic outside stdin: %v", d)
				}
				if i > 0 && diags[i-1].Pos.Compare(d.Pos) > 0 {
					t.Errorf("diagnostics not sorted: %v before %v", diags[i-1], d)
				}
			}
			for _, p := range objectPositions(in) {
				if p.File != stdinName || p.Line < 1 {
					t.Errorf("object at %v", p)
				}
			}
			if (diags.Err() != nil) != (len(in.Invalid) > 0) {
				t.Errorf("errors %v, but invalid documents %v", diags.Err(), in.Invalid)
			}
			for _, v := range in.Invalid {
				if v.Pos.File != stdinName {
					t.Errorf("invalid document at %v", v.Pos)
				}
			}
			CrossCheck(in)
		}
	})
}

func objectPositions(in *api.Input) []diag.Pos {
	var out []diag.Pos
	for _, s := range in.Services {
		out = append(out, s.Pos)
	}
	for _, s := range in.EndpointSlices {
		out = append(out, s.Pos)
	}
	for _, n := range in.Nodes {
		out = append(out, n.Pos)
	}
	for _, c := range in.ProxyConfigs {
		out = append(out, c.Pos)
	}
	for _, e := range in.Endpoints {
		out = append(out, e.Pos)
	}
	for _, c := range in.ServiceCIDRs {
		out = append(out, c.Pos)
	}
	return out
}
