// Command kpc compiles Kubernetes Service and EndpointSlice manifests into
// kernel rulesets (nft, iptables-restore, netlink): kube-proxy's job done
// offline. Run "kpc help" for the command reference.
package main

import (
	"os"

	"kpc/internal/gcpolicy"
)

func main() {
	gcpolicy.Apply()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
