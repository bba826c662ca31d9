package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestReviewCommands checks the exit statuses and outputs of kpc diff,
// kpc env and kpc compile --format dns.
func TestReviewCommands(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "seed.yaml", seed)
	same := writeFile(t, dir, "same.yaml", seed)
	fewer := writeFile(t, dir, "fewer.yaml", strings.Replace(seed, "  - addresses: [\"10.1.2.3\"]\n", "", 1))
	invalid := writeFile(t, dir, "bad.yaml", bad)
	np := strings.NewReplacer("spec:\n", "spec:\n  type: NodePort\n", "targetPort: 9376", "targetPort: 9376\n      nodePort: 30080").Replace(seed)
	nodePort := writeFile(t, dir, "np.yaml", np)
	nodePortLocal := writeFile(t, dir, "np-local.yaml", strings.Replace(np, "  type: NodePort\n", "  type: NodePort\n  externalTrafficPolicy: Local\n", 1))
	tests := []cliCase{
		{name: "diff equal", args: []string{"diff", good, same}, code: exitOK, emptyStdout: true},
		{name: "diff different", args: []string{"diff", good, fewer}, code: exitInvalid,
			stdout: []string{"--- " + good, "~ default/my-service", "- endpoint 10.1.2.3",
				"10.96.0.100:80/tcp (default/my-service:http): endpoints {10.1.2.3:9376, 10.4.5.6:9376} -> {10.4.5.6:9376}",
				"Ruleset lines (nft):", "@@ "}},
		{name: "diff NodePort without a node", args: []string{"diff", nodePort, nodePortLocal}, code: exitInvalid,
			stdout: []string{"NodePort 30080/tcp (default/my-service:http): now dropped for off-node clients (was endpoints {10.1.2.3:9376, 10.4.5.6:9376})"}},
		{name: "diff iptables", args: []string{"diff", "--format", "iptables", good, fewer}, code: exitInvalid,
			stdout: []string{"Traffic (iptables semantics):", "Ruleset lines (iptables):", "-A KPC-"}},
		{name: "diff stdin old side", args: []string{"diff", "-", fewer}, stdin: seed, code: exitInvalid, stdout: []string{"--- -"}},
		{name: "diff json", args: []string{"diff", "-o", "json", good, fewer}, code: exitInvalid, stdout: []string{`"schemaVersion": 1`, `"equal": false`}},
		{name: "diff json equal", args: []string{"diff", "-o", "json", good, same}, code: exitOK, stdout: []string{`"equal": true`}},
		{name: "diff invalid side", args: []string{"diff", good, invalid}, code: exitUsage, stderr: []string{"the new side", "70000"}, emptyStdout: true},
		{name: "diff one arg", args: []string{"diff", good}, code: exitUsage, stderr: []string{"want two inputs"}},
		{name: "diff both stdin", args: []string{"diff", "-", "-"}, code: exitUsage, stderr: []string{"only one side"}},
		{name: "diff bad format", args: []string{"diff", "--format", "pf", good, same}, code: exitUsage, stderr: []string{"--format"}},
		{name: "diff bad output", args: []string{"diff", "-o", "yaml", good, same}, code: exitUsage, stderr: []string{"-o"}},
		{name: "diff bad flag", args: []string{"diff", "--nope", good, same}, code: exitUsage, stderr: []string{"unknown flag"}},
		{name: "diff missing file", args: []string{"diff", good, dir + "/nope.yaml"}, code: exitUsage},
		{name: "diff help", args: []string{"diff", "--help"}, code: exitOK, stdout: []string{"kpc diff OLD NEW"}},
		{name: "env", args: []string{"env", "-f", good}, code: exitOK, stdout: []string{
			"export MY_SERVICE_SERVICE_HOST='10.96.0.100'\n", "export MY_SERVICE_PORT='tcp://10.96.0.100:80'\n",
			"export MY_SERVICE_SERVICE_PORT_HTTP='80'\n"}},
		{name: "env other namespace", args: []string{"env", "-n", "other", good}, code: exitOK, emptyStdout: true},
		{name: "env empty namespace", args: []string{"env", "-n", "", good}, code: exitUsage},
		{name: "env invalid", args: []string{"env", invalid}, code: exitInvalid},
		{name: "compile dns", args: []string{"compile", "--format", "dns", "--cluster-domain", "k8s.example.org", good}, code: exitOK,
			stdout: []string{"$ORIGIN k8s.example.org.\n", "my-service.default.svc.k8s.example.org.\tIN\tA\t10.96.0.100\n",
				"_http._tcp.my-service.default.svc.k8s.example.org.\tIN\tSRV\t0 100 80 my-service.default.svc.k8s.example.org.\n"}},
		{name: "compile dns bad domain", args: []string{"compile", "--format", "dns", "--cluster-domain", "a..b", good}, code: exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout := tt.check(t)
			if strings.Contains(strings.Join(tt.args, " "), "-o json") && tt.code != exitUsage && !json.Valid([]byte(stdout)) {
				t.Errorf("invalid JSON:\n%s", stdout)
			}
		})
	}
}
