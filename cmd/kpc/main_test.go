package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

const seed = `apiVersion: v1
kind: Service
metadata:
  name: my-service
spec:
  clusterIP: 10.96.0.100
  ports:
    - name: http
      port: 80
      targetPort: 9376
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: my-service-1
  labels:
    kubernetes.io/service-name: my-service
addressType: IPv4
ports:
  - name: http
    port: 9376
endpoints:
  - addresses: ["10.4.5.6"]
  - addresses: ["10.1.2.3"]
`

const bad = `apiVersion: v1
kind: Service
metadata:
  name: bad
spec:
  ports:
    - port: 70000
`

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cliCase is one run of the CLI and what it must give.
type cliCase struct {
	name        string
	args        []string
	stdin       string
	code        int
	stdout      []string // substrings
	stderr      []string
	absent      []string // substrings of neither stdout nor stderr
	emptyStdout bool
}

// check runs c and reports every difference; it returns stdout.
func (c cliCase) check(t *testing.T) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(c.args, strings.NewReader(c.stdin), &stdout, &stderr)
	if code != c.code {
		t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout.String(), stderr.String())
	}
	for _, s := range c.stdout {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
		}
	}
	for _, s := range c.stderr {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
		}
	}
	for _, s := range c.absent {
		if strings.Contains(stdout.String(), s) || strings.Contains(stderr.String(), s) {
			t.Errorf("output has %q:\nstdout:\n%s\nstderr:\n%s", s, stdout.String(), stderr.String())
		}
	}
	if c.emptyStdout && stdout.Len() > 0 {
		t.Errorf("stdout not empty:\n%s", stdout.String())
	}
	return stdout.String()
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	invalid := writeFile(t, dir, "bad.yaml", bad)
	withConfigMap := writeFile(t, dir, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n---\n"+seed)
	orphanSlice := writeFile(t, dir, "orphan.yaml", strings.Replace(seed[strings.Index(seed, "---"):], "service-name: my-service", "service-name: gone", 1))
	twice := writeFile(t, dir, "twice.yaml", seed+"---\n"+strings.Replace(seed[:strings.Index(seed, "---")], "name: my-service", "name: other", 1))
	nodePort := writeFile(t, dir, "np.yaml", strings.NewReplacer("name: my-service\n", "name: np\n", "service-name: my-service", "service-name: np",
		"spec:\n", "spec:\n  type: NodePort\n", "targetPort: 9376", "targetPort: 9376\n      nodePort: 30080").Replace(seed))
	onlyConfigMap := writeFile(t, dir, "only-cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n")
	// Service ranges of both families, Services of one: the ip6 table is
	// kept for its range, and iptables output is of IPv4 alone.
	bothRanges := writeFile(t, dir, "both-ranges.yaml", "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: kubernetes\n"+
		"spec:\n  cidrs: [10.96.0.0/12, \"fd00:10:96::/108\"]\n---\n"+seed)
	misspelt := writeFile(t, dir, "misspelt.yaml", strings.Replace(seed, "targetPort: 9376", "tagetPort: 9376", 1))
	// Beside an invalid document, the valid ones are still checked across
	// documents, as far as the invalid one cannot change the verdict.
	twiceBad := writeFile(t, dir, "twice-bad.yaml", seed+"---\n"+strings.Replace(seed[:strings.Index(seed, "---")], "name: my-service", "name: other", 1)+"---\n"+bad)
	orphanBad := writeFile(t, dir, "orphan-bad.yaml", bad+strings.Replace(seed[strings.Index(seed, "---"):], "service-name: my-service", "service-name: gone", 1)+
		strings.NewReplacer("service-name: my-service", "service-name: bad", "name: my-service-1", "name: bad-1").Replace(seed[strings.Index(seed, "---"):]))
	reservedTwice := writeFile(t, dir, "reserved-twice.yaml", strings.Replace(seed[:strings.Index(seed, "---")], "10.96.0.100", "10.96.0.0", 1)+"---\n"+
		strings.Replace(seed[:strings.Index(seed, "---")], "name: my-service", "name: a", 1)+"---\n"+
		strings.Replace(seed[:strings.Index(seed, "---")], "name: my-service", "name: b", 1))
	const takenTwice = "twice-bad.yaml:31:14: Service default/other: spec.clusterIPs[0]: cluster IP 10.96.0.100 is already allocated to Service default/my-service"
	const badPort = "twice-bad.yaml:43:13: Service default/bad: spec.ports[0].port: invalid value 70000"
	// kube-proxy's TestHealthCheckNodePort: healthCheckNodePort 30000.
	healthCheck := filepath.Join("..", "..", "golden", "testdata", "kube-proxy-iptables-healthchecknodeport", "input.yaml")
	// A Service without endpoints, with an external IP.
	noEndpoints := writeFile(t, dir, "no-endpoints.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: gone}\nspec:\n  clusterIP: 10.96.0.50\n"+
		"  externalIPs: [203.0.113.50]\n  selector: {app: gone}\n  ports: [{port: 80}]\n")
	// The golden case whose pods are on the bridge "toc".
	bridge := filepath.Join("..", "..", "golden", "testdata", "detect-local-bridge-interface", "input.yaml")
	tests := []cliCase{
		{name: "no args", args: nil, code: exitUsage, stderr: []string{"Usage: kpc COMMAND"}},
		{name: "trace a pod on the bridge", args: []string{"trace", "-f", bridge, "--from", "192.0.2.5", "--iif", "toc", "--to", "10.96.30.30:80"}, code: exitOK,
			stdout: []string{"(in on toc)", "10.244.0.30:8080         p=0.5000  masquerade=no"}},
		{name: "trace from another interface", args: []string{"trace", "-f", bridge, "--from", "192.0.2.5", "--to", "10.96.30.30:80"}, code: exitOK,
			stdout: []string{"masquerade=yes", "hint:    the node tells a local pod's packets by the interface they arrive on (toc)"}},
		{name: "trace from a node address is the node's", args: []string{"trace", "-f", bridge, "--from", "198.51.100.1", "--to", "10.96.30.30:80"}, code: exitOK,
			stdout: []string{"(from the node)", "masquerade=yes"}},
		{name: "trace --from-node=false is taken at its word", args: []string{"trace", "-f", bridge, "--from", "198.51.100.1", "--from-node=false", "--to", "10.96.30.30:80"}, code: exitOK,
			stdout: []string{"packet:  198.51.100.1 -> 10.96.30.30:80 TCP\n"}},
		{name: "trace --iif with --from-node", args: []string{"trace", "-f", bridge, "--from", "198.51.100.1", "--from-node", "--iif", "toc", "--to", "10.96.30.30:80"}, code: exitUsage,
			stderr: []string{"--iif with --from-node: a packet the node sends arrives on no interface"}, emptyStdout: true},
		{name: "trace --iif not read", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--iif", "cbr0", "--to", "10.96.0.100:80"}, code: exitOK,
			stdout: []string{"hint:    --iif is not read: the node does not tell its pods by the interface they arrive on"}},
		{name: "trace --iif of an impossible name", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--iif", "a-name-of-16-bytes", "--to", "10.96.0.100:80"}, code: exitUsage,
			stderr: []string{`--iif "a-name-of-16-bytes": an interface name has at most 15 bytes`}, emptyStdout: true},
		{name: "help", args: []string{"help"}, code: exitOK, stdout: []string{"compile", "validate", "trace"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, stderr: []string{`unknown command "frobnicate"`}},
		{name: "compile help", args: []string{"compile", "--help"}, code: exitOK, stdout: []string{"--filename", "--format"}},
		{name: "compile bad flag", args: []string{"compile", "--nope"}, code: exitUsage, stderr: []string{"unknown flag"}},
		{name: "compile no input", args: []string{"compile"}, code: exitUsage, stderr: []string{"no input"}},
		{name: "compile nft", args: []string{"compile", "-f", good}, code: exitOK,
			stdout: []string{"table ip kpc", "10.96.0.100 . tcp . 80", "10.4.5.6 . 9376"}},
		{name: "compile positional", args: []string{"compile", good}, code: exitOK, stdout: []string{"table ip kpc"}},
		{name: "compile stdin", args: []string{"compile", "-f", "-"}, stdin: seed, code: exitOK, stdout: []string{"table ip kpc"}},
		{name: "compile -R, as kubectl takes it", args: []string{"compile", "-R", "-f", good}, code: exitOK, stdout: []string{"table ip kpc"}},
		{name: "compile --recursive=false", args: []string{"compile", "--recursive=false", "-f", good}, code: exitUsage,
			stderr: []string{"kpc reads directories recursively always; name the files to read fewer"}, emptyStdout: true},
		{name: "validate -k", args: []string{"validate", "-k", dir}, code: exitUsage,
			stderr: []string{"kpc reads no kustomizations: render it first, kubectl kustomize " + dir + " | kpc validate -f -"}, emptyStdout: true},
		{name: "compile a comma-separated -f list, as kubectl takes", args: []string{"compile", "-f", good + "," + onlyConfigMap}, code: exitOK,
			stdout: []string{"table ip kpc"}, stderr: []string{"only-cm.yaml:1:1: warning: skipping ConfigMap cfg"}},
		{name: "compile a comma-separated -f list with a missing file", args: []string{"compile", "-f", good + ",," + filepath.Join(dir, "nope.yaml")}, code: exitInvalid,
			stderr: []string{"nope.yaml: cannot read input: stat " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"}, emptyStdout: true},
		{name: "compile iptables", args: []string{"compile", "--format", "iptables", good}, code: exitOK,
			stdout: []string{"*nat", "--probability 0.5000000000", "COMMIT"}},
		{name: "compile one family's Services, both ranges", args: []string{"compile", bothRanges}, code: exitOK,
			stdout: []string{"table ip kpc", "table ip6 kpc", "ip6 daddr fd00:10:96::/108 drop"}},
		{name: "compile iptables of one family's Services, both ranges", args: []string{"compile", "--format", "iptables", bothRanges}, code: exitOK,
			stdout: []string{"iptables-restore input (IPv4)", "10.96.0.100/32"}},
		{name: "compile ir", args: []string{"compile", "--format", "ir", good}, code: exitOK, stdout: []string{"ruleset IPv4 table kpc"}},
		{name: "compile bad format", args: []string{"compile", "--format", "pf", good}, code: exitUsage, stderr: []string{`--format "pf"`}},
		// Bad flag values are refused before the input is read: its
		// diagnostics and notes do not come first.
		{name: "compile bad format before reading", args: []string{"compile", "--format", "pf", invalid}, code: exitUsage,
			stderr: []string{`kpc compile: --format "pf": want nft, iptables, ir or dns`}, absent: []string{"bad.yaml"}, emptyStdout: true},
		{name: "compile bad family before reading", args: []string{"compile", "--format", "iptables", "--family", "ipv5", invalid}, code: exitUsage,
			stderr: []string{`kpc compile: --family "ipv5": want ipv4 or ipv6`}, absent: []string{"bad.yaml"}, emptyStdout: true},
		{name: "compile invalid", args: []string{"compile", "-f", invalid}, code: exitInvalid, emptyStdout: true,
			stderr: []string{"bad.yaml:7:13: Service default/bad: spec.ports[0].port:"}},
		{name: "compile bad node ip", args: []string{"compile", "--node-ip", "nope", good}, code: exitUsage, stderr: []string{`--node-ip "nope"`}},
		{name: "compile bad cidr", args: []string{"compile", "--service-cidr", "10.96.0.1/12", good}, code: exitUsage, stderr: []string{"host bits set"}},
		{name: "validate ok", args: []string{"validate", good}, code: exitOK, emptyStdout: true},
		{name: "validate invalid", args: []string{"validate", invalid}, code: exitInvalid, stdout: []string{"spec.ports[0].port"}},
		{name: "validate strict skips other kinds", args: []string{"validate", "--strict", withConfigMap}, code: exitOK,
			stdout: []string{"cm.yaml:1:1: warning: skipping ConfigMap cfg"}},
		{name: "compile strict skips other kinds", args: []string{"compile", "--strict", withConfigMap}, code: exitOK,
			stdout: []string{"table ip kpc"}, stderr: []string{"warning: skipping ConfigMap"}},
		{name: "validate strict cross-document warning", args: []string{"validate", "--strict", orphanSlice}, code: exitInvalid,
			stdout: []string{"Service default/gone is not in the input"}},
		{name: "compile no objects", args: []string{"compile", onlyConfigMap}, code: exitOK,
			stdout: []string{"table ip kpc"}, stderr: []string{"only-cm.yaml: warning: the input holds no Service, EndpointSlice or Endpoints"}},
		{name: "compile strict no objects", args: []string{"compile", "--strict", onlyConfigMap}, code: exitInvalid, emptyStdout: true,
			stderr: []string{"only-cm.yaml: the input holds no Service, EndpointSlice or Endpoints"}},
		{name: "validate empty stdin", args: []string{"validate", "-f", "-"}, code: exitOK,
			stdout: []string{"-: warning: the input holds no Service, EndpointSlice or Endpoints"}},
		{name: "apply no objects", args: []string{"apply", "--dry-run", onlyConfigMap}, code: exitInvalid, emptyStdout: true,
			stderr: []string{"only-cm.yaml: no objects passed to apply"}},
		{name: "validate cross-document warning", args: []string{"validate", orphanSlice}, code: exitOK,
			stdout: []string{"warning: ", "Service default/gone is not in the input"}},
		{name: "validate unknown field", args: []string{"validate", misspelt}, code: exitOK,
			stdout: []string{`misspelt.yaml:10:7: warning: Service default/my-service: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`}},
		{name: "validate strict unknown field", args: []string{"validate", "--strict", misspelt}, code: exitInvalid,
			stdout: []string{`misspelt.yaml:10:7: Service default/my-service: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`}},
		{name: "compile unknown field", args: []string{"compile", misspelt}, code: exitOK,
			stdout: []string{"table ip kpc"}, stderr: []string{`warning: Service default/my-service: spec.ports[0].tagetPort: unknown field`}},
		{name: "compile strict unknown field", args: []string{"compile", "--strict", misspelt}, code: exitInvalid, emptyStdout: true,
			stderr: []string{`misspelt.yaml:10:7: Service default/my-service: spec.ports[0].tagetPort: unknown field "spec.ports[0].tagetPort"`}},
		{name: "validate cluster IP taken twice", args: []string{"validate", twice}, code: exitInvalid,
			stdout: []string{"twice.yaml:31:14: Service default/other: spec.clusterIPs[0]: cluster IP 10.96.0.100 is already allocated to Service default/my-service"}},
		{name: "validate cluster IP taken twice beside an invalid document", args: []string{"validate", twiceBad}, code: exitInvalid,
			stdout: []string{takenTwice, badPort}},
		{name: "validate json, beside an invalid document", args: []string{"validate", "-o", "json", twiceBad}, code: exitInvalid,
			stdout: []string{`"valid": false`, `"message": "cluster IP 10.96.0.100 is already allocated to Service default/my-service"`, `"message": "invalid value 70000`}},
		{name: "validate junit, beside an invalid document", args: []string{"validate", "-o", "junit", twiceBad}, code: exitInvalid,
			stdout: []string{`failures="2"`, `name="Service default/other"`, `name="Service default/bad"`}},
		{name: "compile beside an invalid document", args: []string{"compile", twiceBad}, code: exitInvalid, emptyStdout: true,
			stderr: []string{takenTwice, badPort}},
		{name: "apply beside an invalid document", args: []string{"apply", "--dry-run", twiceBad}, code: exitInvalid, emptyStdout: true,
			stderr: []string{takenTwice, badPort}},
		{name: "trace beside an invalid document", args: []string{"trace", "-f", twiceBad, "--from", "203.0.113.7", "--to", "10.96.0.100:80/tcp"}, code: exitInvalid,
			stderr: []string{takenTwice, badPort}},
		{name: "diff beside an invalid document", args: []string{"diff", good, twiceBad}, code: exitUsage,
			stderr: []string{takenTwice, badPort}},
		{name: "validate cross-document warning beside an invalid document", args: []string{"validate", orphanBad}, code: exitInvalid,
			stdout: []string{"orphan-bad.yaml:7:13: Service default/bad: spec.ports[0].port:", "orphan-bad.yaml:14:33: warning: EndpointSlice default/my-service-1: metadata.labels[kubernetes.io/service-name]: Service default/gone is not in the input"},
			absent: []string{"EndpointSlice default/bad-1"}},
		{name: "compile strict cross-document warning beside an invalid document", args: []string{"compile", "--strict", orphanBad}, code: exitInvalid, emptyStdout: true,
			stderr: []string{"orphan-bad.yaml:14:33: EndpointSlice default/my-service-1: metadata.labels[kubernetes.io/service-name]: Service default/gone is not in the input"}},
		{name: "validate service CIDR reserved address beside a cluster IP taken twice", args: []string{"validate", "--service-cidr", "10.96.0.0/12", reservedTwice}, code: exitInvalid,
			stdout: []string{"reserved-twice.yaml:6:14: Service default/my-service: spec.clusterIPs: invalid value [\"10.96.0.0\"]: failed to allocate IP 10.96.0.0: the network and broadcast addresses of service CIDR 10.96.0.0/12 are reserved",
				"reserved-twice.yaml:28:14: Service default/b: spec.clusterIPs[0]: cluster IP 10.96.0.100 is already allocated to Service default/a"}},
		{name: "validate bad output", args: []string{"validate", "-o", "yaml", good}, code: exitUsage},
		{name: "trace", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--to", "10.96.0.100:80/tcp"}, code: exitOK,
			stdout: []string{"DNAT", "10.4.5.6:9376", "10.1.2.3:9376", "p=0.5000"}},
		{name: "trace to a port beyond 65535", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--to", "10.96.0.100:70000"}, code: exitUsage,
			stderr: []string{`--to "10.96.0.100:70000": port must be between 1 and 65535`}, emptyStdout: true},
		{name: "diff -R, as kubectl takes it", args: []string{"diff", "-R", good, good}, code: exitOK},
		{name: "trace reject", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--to", "10.96.0.100:81"}, code: exitOK,
			stdout: []string{"verdict: reject"}},
		{name: "trace NodePort to an unknown node address", args: []string{"trace", "-f", nodePort, "--from", "203.0.113.7", "--to", "192.0.2.10:30080"}, code: exitOK,
			stdout: []string{"verdict: untouched", "hint:    no address of the node is known", "NodePort 30080/TCP (default/np:http) applies; trace again with --to-node"}},
		{name: "trace NodePort --to-node", args: []string{"trace", "-f", nodePort, "--from", "203.0.113.7", "--to", "192.0.2.10:30080", "--to-node"}, code: exitOK,
			stdout: []string{"(to the node)", "DNAT", "10.4.5.6:9376"}},
		{name: "trace NodePort --node-ip", args: []string{"trace", "-f", nodePort, "--from", "203.0.113.7", "--to", "192.0.2.10:30080", "--node-ip", "192.0.2.10"}, code: exitOK,
			stdout: []string{"DNAT", "10.4.5.6:9376"}},
		{name: "trace stray port iptables", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--to", "10.96.0.100:81", "--mode", "iptables"}, code: exitOK,
			stdout: []string{"verdict: untouched (a Service address, but no Service port matches)"}},
		{name: "trace not a Service address", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--to", "192.0.2.99:81"}, code: exitOK,
			stdout: []string{"verdict: untouched (not a Service address)"}},
		{name: "trace the node to an external IP without endpoints, nft mode", args: []string{"trace", "-f", noEndpoints, "--from", "192.0.2.10", "--from-node", "--to", "203.0.113.50:80"}, code: exitOK,
			stdout: []string{"verdict: reject", "path:    no-endpoint-services"}},
		{name: "trace the node to an external IP without endpoints, iptables mode", args: []string{"trace", "-f", noEndpoints, "--mode", "iptables", "--from", "192.0.2.10", "--from-node", "--to", "203.0.113.50:80"}, code: exitOK,
			stdout: []string{"verdict: untouched (a Service without endpoints, but iptables mode checks this address on other paths than this packet's)"}},
		{name: "trace a pod to an external IP without endpoints, iptables mode", args: []string{"trace", "-f", noEndpoints, "--mode", "iptables", "--from", "10.244.1.5", "--to", "203.0.113.50:80"}, code: exitOK,
			stdout: []string{"verdict: reject"}},
		{name: "trace NodePort at an unlisted node address, iptables mode", args: []string{"trace", "-f", nodePort, "--node-ip", "192.0.2.10", "--mode", "iptables", "--from", "203.0.113.7", "--to", "192.0.2.11:30080"}, code: exitOK,
			stdout: []string{"verdict: untouched", "hint:    192.0.2.11 is not one of the node's known addresses"}},
		{name: "trace health-check NodePort, iptables mode", args: []string{"trace", "-f", healthCheck, "--mode", "iptables", "--from", "203.0.113.7", "--to", "192.168.0.2:30000"}, code: exitOK,
			stdout: []string{"verdict: accept (a health-check NodePort", "path:    health-check-nodeports"}},
		{name: "trace health-check NodePort, nft mode", args: []string{"trace", "-f", healthCheck, "--from", "203.0.113.7", "--to", "192.168.0.2:30000"}, code: exitOK,
			stdout: []string{"verdict: untouched"}},
		{name: "trace bad to", args: []string{"trace", "-f", good, "--from", "203.0.113.7", "--to", "10.96.0.100"}, code: exitUsage},
		{name: "trace mixed families", args: []string{"trace", "-f", good, "--from", "2001:db8::1", "--to", "10.96.0.100:80"}, code: exitUsage},
		{name: "gen", args: []string{"gen", "--services", "3", "--endpoints", "2"}, code: exitOK, stdout: []string{"kind: EndpointSlice"}},
		{name: "gen kubectl yaml", args: []string{"gen", "--services", "3", "--format", "kubectl-yaml"}, code: exitOK, stdout: []string{"kind: List", "uid: "}},
		{name: "gen kubectl json", args: []string{"gen", "--services", "3", "--format", "kubectl-json"}, code: exitOK, stdout: []string{`    "kind": "List"`}},
		{name: "gen bad format", args: []string{"gen", "--format", "xml"}, code: exitUsage, stderr: []string{`not "xml"`}},
		{name: "version", args: []string{"version"}, code: exitOK, stdout: []string{"kpc "}},
		{name: "--version", args: []string{"--version"}, code: exitOK, stdout: []string{"kpc "}},
		{name: "version with an argument", args: []string{"version", "extra"}, code: exitUsage, emptyStdout: true,
			stderr: []string{"takes no arguments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t) })
	}
}

// TestCompileOutputAtomic checks that -o replaces the file on success and
// leaves it untouched on invalid input.
func TestCompileOutputAtomic(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	invalid := writeFile(t, dir, "bad.yaml", bad)
	out := writeFile(t, dir, "rules.nft", "previous\n")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"compile", "-f", invalid, "-o", out}, nil, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("exit %d, want %d", code, exitInvalid)
	}
	if b, _ := os.ReadFile(out); string(b) != "previous\n" {
		t.Fatalf("output changed on error: %q", b)
	}
	if code := run([]string{"compile", "-f", good, "-o", out}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "table ip kpc") {
		t.Fatalf("output not written: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

// TestCompileTimings checks the line of --timings on stderr,
// for one file and for the two files of both iptables families, and that
// there is none without the flag.
func TestCompileTimings(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	dual := filepath.Join("..", "..", "golden", "testdata", "dual-stack", "input.yaml")
	d := `([0-9]+ ms|[0-9]+\.[0-9]{2} s|under 1 ms)`
	line := regexp.MustCompile(`(?m)^kpc compile: took ` + d + ` to load, ` + d + ` to compile, ` + d + ` to render and write$`)
	tests := []struct {
		name  string
		args  []string
		timed bool
	}{
		{"nft", []string{"compile", "--timings", "-f", good, "-o", filepath.Join(dir, "out.nft")}, true},
		{"iptables, both families", []string{"compile", "--timings", "--format", "iptables", "-f", dual, "-o", filepath.Join(dir, "out.rules")}, true},
		{"untimed", []string{"compile", "-f", good, "-o", filepath.Join(dir, "out.nft")}, false},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, nil, &stdout, &stderr); code != exitOK {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr.String())
		}
		if tc.timed != line.MatchString(stderr.String()) {
			t.Errorf("%s: stderr %q, want the timings line: %v", tc.name, stderr.String(), tc.timed)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.rules.ipv6")); err != nil {
		t.Errorf("both families: %v", err)
	}
}

// TestCompileIPTablesOneFamily checks that, with Service ranges of both
// families but Services of one, -o PATH writes one iptables file, of that
// family, since iptables drops no unallocated address.
func TestCompileIPTablesOneFamily(t *testing.T) {
	dir := t.TempDir()
	oneFamily := writeFile(t, dir, "one-family.yaml", "apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata:\n  name: kubernetes\n"+
		"spec:\n  cidrs: [10.96.0.0/12, \"fd00:10:96::/108\"]\n---\n"+seed)
	out := filepath.Join(dir, "one.rules")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"compile", "--format", "iptables", "-f", oneFamily, "-o", out}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("one family: exit %d: %s", code, stderr.String())
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte("(IPv4)")) {
		t.Errorf("one family: %s: %v, want the IPv4 file", out, err)
	}
	for _, f := range []string{out + ".ipv4", out + ".ipv6"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("one family: %s written", f)
		}
	}
}

// TestCompileDeterministic checks that document order does not change the
// output.
func TestCompileDeterministic(t *testing.T) {
	dir := t.TempDir()
	docs := strings.Split(seed, "---\n")
	a := writeFile(t, dir, "a.yaml", docs[0]+"---\n"+docs[1])
	b := writeFile(t, dir, "b.yaml", docs[1]+"---\n"+docs[0])
	var outA, outB, stderr bytes.Buffer
	if run([]string{"compile", a}, nil, &outA, &stderr) != exitOK || run([]string{"compile", b}, nil, &outB, &stderr) != exitOK {
		t.Fatal(stderr.String())
	}
	if outA.String() != outB.String() {
		t.Error("document order changed the output")
	}
}

func TestValidateReports(t *testing.T) {
	dir := t.TempDir()
	invalid := writeFile(t, dir, "bad.yaml", bad)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-o", "json", invalid}, nil, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		Valid       bool
		Diagnostics []struct{ File, Field, Message, Severity string }
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, stdout.String())
	}
	if rep.Valid || len(rep.Diagnostics) == 0 || rep.Diagnostics[0].Field != "spec.ports[0].port" {
		t.Errorf("unexpected report: %+v", rep)
	}
	stdout.Reset()
	if code := run([]string{"validate", "-o", "junit", invalid}, nil, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	var suites junitSuites
	if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v\n%s", err, stdout.String())
	}
	if len(suites.Suites) != 1 || suites.Suites[0].Failures == 0 {
		t.Errorf("unexpected junit: %+v", suites)
	}
	// A valid input beside an invalid one is a passing test case.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	good := writeFile(t, sub, "seed.yaml", seed)
	stdout.Reset()
	if code := run([]string{"validate", "-o", "junit", invalid, sub}, nil, &stdout, &stderr); code != exitInvalid {
		t.Fatalf("exit %d", code)
	}
	suites = junitSuites{}
	if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v\n%s", err, stdout.String())
	}
	var passed []string
	for _, c := range suites.Suites[0].Cases {
		if c.Failure == nil {
			passed = append(passed, c.Name)
		}
	}
	if suites.Suites[0].Failures != 1 || len(passed) != 1 || passed[0] != sub {
		t.Errorf("junit cases: %d failures, passed %q; want 1 and [%s] (%s)", suites.Suites[0].Failures, passed, sub, good)
	}
	// A directory given as "./dir" with a failure in it does not pass.
	writeFile(t, sub, "bad.yaml", bad)
	stdout.Reset()
	run([]string{"validate", "-o", "junit", sub + string(filepath.Separator) + "."}, nil, &stdout, &stderr)
	suites = junitSuites{}
	if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
		t.Fatalf("junit: %v\n%s", err, stdout.String())
	}
	for _, c := range suites.Suites[0].Cases {
		if c.Failure == nil {
			t.Errorf("%s passes, with bad.yaml in it", c.Name)
		}
	}
}

// TestValidateJUnitMessages checks the failures of the JUnit report: the
// message is the field path and the diagnostic's message, or the message
// alone for an error of a file as a whole; the text is the diagnostic,
// with its position.
func TestValidateJUnitMessages(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, data string
		pos, msg   string
	}{
		{"bad.yaml", bad, ":7:13", "spec.ports[0].port: invalid value 70000: must be between 1 and 65535, inclusive"},
		{"trunc.json", `{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}`, ":1:89", "JSON syntax error: unexpected end of input"},
		{"flow.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n", ":4:9",
			"YAML syntax error: did not find expected ',' or ']' in the flow sequence that starts here: close it, or separate its entries with commas"},
		{"quote.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: \"a\n", ":4", "YAML syntax error: found unexpected end of stream"},
	} {
		path := writeFile(t, dir, tc.name, tc.data)
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", "-o", "junit", path}, nil, &stdout, &stderr); code != exitInvalid {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr.String())
		}
		var suites junitSuites
		if err := xml.Unmarshal(stdout.Bytes(), &suites); err != nil {
			t.Fatalf("%s: junit: %v\n%s", tc.name, err, stdout.String())
		}
		var failures []*junitFailure
		for _, c := range suites.Suites[0].Cases {
			if c.Failure != nil {
				failures = append(failures, c.Failure)
			}
		}
		if len(failures) != 1 {
			t.Fatalf("%s: %d failures, want 1:\n%s", tc.name, len(failures), stdout.String())
		}
		if f := failures[0]; f.Message != tc.msg || !strings.HasPrefix(f.Text, path+tc.pos+": ") || !strings.HasSuffix(f.Text, tc.msg) {
			t.Errorf("%s: failure %q, %q; want message %q, text at %s%s", tc.name, f.Message, f.Text, tc.msg, path, tc.pos)
		}
	}
}

// TestCompileIPTablesBothFamilies checks that dual-stack input needs a
// family, or gets one file per family with -o.
func TestCompileIPTablesBothFamilies(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join("..", "..", "golden", "testdata", "dual-stack", "input.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"compile", "--format", "iptables", in}, nil, &stdout, &stderr); code != exitUsage {
		t.Fatalf("exit %d, want %d: %s", code, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--family") {
		t.Errorf("error does not name --family: %s", stderr.String())
	}
	out := filepath.Join(dir, "rules")
	if code := run([]string{"compile", "--format", "iptables", in, "-o", out}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for fam, want := range map[string]string{"ipv4": "10.96.20.20", "ipv6": "fd00:10:96::20"} {
		b, err := os.ReadFile(out + "." + fam)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) {
			t.Errorf("%s file lacks %s", fam, want)
		}
	}
}

// TestGenKubectlDumps checks that kpc gen's kubectl dumps, large enough
// to be parsed in parts, validate without a report (not even a warning of
// an unknown field) and compile without one to the same ruleset in YAML
// and in JSON, from files and from standard input.
func TestGenKubectlDumps(t *testing.T) {
	dir := t.TempDir()
	var rulesets []string
	for _, format := range []string{"kubectl-yaml", "kubectl-json"} {
		var dump, stderr bytes.Buffer
		if code := run([]string{"gen", "--services", "400", "--endpoints", "6", "--format", format}, nil, &dump, &stderr); code != exitOK {
			t.Fatalf("gen %s: exit %d: %s", format, code, stderr.String())
		}
		if dump.Len() < 1<<20 {
			t.Fatalf("%s: %d bytes, too few to be parsed in parts", format, dump.Len())
		}
		ext := map[string]string{"kubectl-yaml": "yaml", "kubectl-json": "json"}[format]
		file := writeFile(t, dir, "dump."+ext, dump.String())
		cliCase{name: "validate " + format, args: []string{"validate", file}, code: exitOK, emptyStdout: true}.check(t)
		for _, in := range []struct {
			args  []string
			stdin io.Reader
		}{{[]string{"compile", file}, nil}, {[]string{"compile", "-f", "-"}, bytes.NewReader(dump.Bytes())}} {
			var out bytes.Buffer
			stderr.Reset()
			if code := run(in.args, in.stdin, &out, &stderr); code != exitOK || stderr.Len() != 0 {
				t.Fatalf("%s %v: exit %d: %s", format, in.args, code, stderr.String())
			}
			rulesets = append(rulesets, out.String())
		}
	}
	for i, r := range rulesets[1:] {
		if r != rulesets[0] {
			t.Errorf("ruleset %d differs from the first", i+1)
		}
	}
	if !strings.Contains(rulesets[0], "10.96.1.145") { // Service 399
		t.Error("the last Service is missing")
	}
}

// TestCompileOutputNotRegular checks -o to what is not a regular file: a
// FIFO (as /dev/null is a device) is written in place and stays what it
// is, and a symbolic link is followed, its target replaced.
func TestCompileOutputNotRegular(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // opens once the writer does
		got <- b
	}()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"compile", "-f", good, "-o", fifo}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	select {
	case b := <-got:
		if !strings.Contains(string(b), "table ip kpc") {
			t.Errorf("FIFO read %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing written to the FIFO")
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced: %v %v", st.Mode(), err)
	}

	target := writeFile(t, dir, "target.nft", "previous\n")
	link := filepath.Join(dir, "link.nft")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"compile", "-f", good, "-o", link}, nil, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", st.Mode(), err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "table ip kpc") {
		t.Errorf("the link's target holds %q", b)
	}
}

// TestStageOutput checks staged output: nothing in place before commit,
// no temporary file left after a failed write or a discard, and the
// contents in place after commit.
func TestStageOutput(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "out.rules", "previous\n")
	content := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	leftovers := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if e.Name() != "out.rules" {
				names = append(names, e.Name())
			}
		}
		return names
	}
	failing := func(w io.Writer) error {
		io.WriteString(w, "half")
		return renderError{errors.New("cannot spell it")}
	}
	if _, err := stageOutput(path, failing); err == nil || !errors.As(err, new(renderError)) {
		t.Errorf("failing write: %v, want its renderError", err)
	}
	s, err := stageOutput(path, content("discarded\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "previous\n" {
		t.Errorf("before commit: %q", b)
	}
	s.discard()
	if l := leftovers(); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
	s, err = stageOutput(path, content("new\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := commitAll([]*staged{s}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("after commit: %q", b)
	}
	if l := leftovers(); len(l) != 0 {
		t.Errorf("left behind: %v", l)
	}
}

// TestVersionText checks what kpc version prints of a build.
func TestVersionText(t *testing.T) {
	bi := func(settings ...string) *debug.BuildInfo {
		b := &debug.BuildInfo{GoVersion: "go1.26.8"}
		for i := 0; i+1 < len(settings); i += 2 {
			b.Settings = append(b.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return b
	}
	tests := []struct {
		v    string
		bi   *debug.BuildInfo
		want string
	}{
		{"v1.2.0", bi("vcs.revision", "0123456789abcdef0123"), "v1.2.0"},
		{"dev", nil, "dev"},
		{"dev", bi(), "dev (go1.26.8)"},
		{"dev", bi("vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "dev (commit 0123456789ab, go1.26.8)"},
		{"dev", bi("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), "dev (commit 0123456789ab with local changes, go1.26.8)"},
	}
	for _, tt := range tests {
		if got := versionText(tt.v, tt.bi); got != tt.want {
			t.Errorf("versionText(%q, %+v) = %q, want %q", tt.v, tt.bi, got, tt.want)
		}
	}
}
