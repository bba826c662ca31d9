// Package netlab is a real-kernel test lab for rulesets. It builds three
// network namespaces joined by veth pairs — a node (where the caller loads a
// ruleset), a client side and a backend side — runs Go TCP and UDP servers on
// the backend endpoints, sends real connections from chosen source addresses
// and reports which endpoint answered and which source address it saw.
//
// It knows nothing of any ruleset format: callers load rules with Exec (nft,
// iptables-restore) or through NodeNSPath (netlink). See topology.go for the
// address plan and Send for the meaning of every outcome.
//
// Everything needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), the ip tool of
// iproute2 and nft (for the upstream router). A lab never touches the
// namespace of the calling process: its interfaces are created directly
// inside its own namespaces, and its sockets are created by threads switched
// into them.
//
// Typical use:
//
//	lab, err := netlab.New(netlab.Config{Endpoints: eps, Clients: clients})
//	defer lab.Close()
//	lab.ExecInput(ctx, rules, "nft", "-f", "-")
//	out, err := lab.Send(netlab.Probe{Src: client, Dst: vip, Port: 80, Protocol: "TCP", Count: 20})
//	// out.Reached: which endpoints answered; out.SeenFrom: a source other
//	// than client means the flow was masqueraded.
package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// NamePrefix starts the name of every namespace a lab creates:
// "kpcl-<pid>-<n>-node", "-client", "-backend" and "-upstream".
const NamePrefix = "kpcl-"

// netnsDir is where `ip netns` keeps named namespaces.
const netnsDir = "/var/run/netns/"

// setupTimeout bounds the commands New runs.
const setupTimeout = 30 * time.Second

// role is one of the lab's namespaces.
type role int

const (
	roleNode role = iota
	roleClient
	roleBackend
	roleUpstream
	numRoles
)

var roleSuffix = [numRoles]string{"node", "client", "backend", "upstream"}

// labCounter makes namespace names unique within the process.
var labCounter atomic.Uint64

// Lab is a running test lab. Its methods may be called from several
// goroutines; Close waits for Sends in progress.
type Lab struct {
	plan    plan
	ipPath  string
	nftPath string
	names   [numRoles]string
	fds     [numRoles]int

	// mu is held for reading by Send and for writing by Close.
	mu     sync.RWMutex
	closed bool
	srv    servers

	portMu   sync.Mutex
	nextPort uint16
}

// New creates the namespaces, addresses, routes and servers of cfg. On error
// everything already created is removed again.
func New(cfg Config) (*Lab, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("netlab: iproute2 is needed: %w", err)
	}
	nftPath, err := exec.LookPath("nft")
	if err != nil {
		return nil, fmt.Errorf("netlab: nft is needed (for the upstream router): %w", err)
	}
	l := &Lab{plan: p, ipPath: ipPath, nftPath: nftPath, fds: [numRoles]int{-1, -1, -1, -1}, nextPort: srcPortMin}
	prefix := fmt.Sprintf("%s%d-%d", NamePrefix, os.Getpid(), labCounter.Add(1))
	for r := range numRoles {
		l.names[r] = prefix + "-" + roleSuffix[r]
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := l.setup(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("netlab: %w", err), l.Close())
	}
	return l, nil
}

// setup builds the topology and starts the servers.
func (l *Lab) setup(ctx context.Context) error {
	var add strings.Builder
	for _, n := range l.names {
		fmt.Fprintf(&add, "netns add %s\n", n)
	}
	if err := runIP(ctx, l.ipPath, "", add.String()); err != nil {
		return err
	}
	for r := range numRoles {
		fd, err := unix.Open(netnsDir+l.names[r], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open namespace %s: %w", l.names[r], err)
		}
		l.fds[r] = fd
		if err := writeSysctls(fd, sysctlsFor(r)); err != nil {
			return fmt.Errorf("namespace %s: %w", l.names[r], err)
		}
	}
	if err := runIP(ctx, l.ipPath, "", rootScript(l.names)); err != nil {
		return err
	}
	var backend4, backend6 []netip.Addr
	for _, a := range l.plan.backendAddrs {
		if a.Is4() {
			backend4 = append(backend4, a)
		} else {
			backend6 = append(backend6, a)
		}
	}
	// Policy rules take their family from the command line, not from
	// "all": IPv4 ones go with the main script, IPv6 ones run under -6.
	for _, s := range []struct {
		r      role
		script string
		opts   []string
	}{
		{roleClient, clientScript(l.plan) + policyRules(nil, "127.0.0.0/8"), nil},
		{roleClient, policyRules(nil, "::1/128"), []string{"-6"}},
		{roleBackend, backendScript(l.plan) + policyRules(backend4, "127.0.0.0/8"), nil},
		{roleBackend, policyRules(backend6, "::1/128"), []string{"-6"}},
		{roleUpstream, upstreamScript(), nil},
		{roleNode, nodeScript(l.plan), nil},
	} {
		if err := runIP(ctx, l.ipPath, l.names[s.r], s.script, s.opts...); err != nil {
			return err
		}
	}
	if err := l.execIn(ctx, roleUpstream, []byte(upstreamRuleset), l.nftPath, "-f", "-"); err != nil {
		return fmt.Errorf("upstream ruleset: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	if err := waitRunning(l.fds[roleNode], deadline, nodeClientIf, nodeBackendIf, nodeUpstreamIf); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	for _, r := range []role{roleClient, roleBackend, roleUpstream} {
		if err := waitRunning(l.fds[r], deadline, peerIf); err != nil {
			return fmt.Errorf("%s: %w", roleSuffix[r], err)
		}
	}
	var onNode, onBackend []Endpoint
	for _, e := range l.plan.endpoints {
		if slices.Contains(l.plan.nodeIPs, e.Addr) {
			onNode = append(onNode, e)
		} else {
			onBackend = append(onBackend, e)
		}
	}
	if err := l.srv.listen(l.fds[roleBackend], onBackend); err != nil {
		return fmt.Errorf("backend servers: %w", err)
	}
	if err := l.srv.listen(l.fds[roleNode], onNode); err != nil {
		return fmt.Errorf("host-network servers: %w", err)
	}
	return nil
}

// Close stops the servers and deletes the lab's namespaces (and with them
// every interface, route, rule and conntrack entry in them). It waits for
// Sends in progress and is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	errs := []error{l.srv.close()}
	for r, fd := range l.fds {
		if fd >= 0 {
			errs = append(errs, unix.Close(fd))
			l.fds[r] = -1
		}
	}
	var del strings.Builder
	for _, n := range l.names {
		if _, err := os.Stat(netnsDir + n); err == nil {
			fmt.Fprintf(&del, "netns delete %s\n", n)
		}
	}
	if del.Len() > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		errs = append(errs, runIP(ctx, l.ipPath, "", del.String()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netlab close: %w", err)
	}
	return nil
}

// NodeNS is the name of the node namespace, for `ip netns exec NAME ...`.
func (l *Lab) NodeNS() string { return l.names[roleNode] }

// NodeNSPath is the path of the node namespace, to open for
// nftables.WithNetNSFd or setns.
func (l *Lab) NodeNSPath() string { return netnsDir + l.names[roleNode] }

// ClientNS is the name of the client namespace (client addresses).
func (l *Lab) ClientNS() string { return l.names[roleClient] }

// BackendNS is the name of the backend namespace (endpoint addresses).
func (l *Lab) BackendNS() string { return l.names[roleBackend] }

// UpstreamNS is the name of the upstream namespace (the node's default
// gateway, which answers everything with ICMP unreachable).
func (l *Lab) UpstreamNS() string { return l.names[roleUpstream] }

// NodeIPs returns the node addresses in use (the defaults when the Config
// gave none).
func (l *Lab) NodeIPs() []netip.Addr { return slices.Clone(l.plan.nodeIPs) }

// Exec runs a command in the node namespace (`ip netns exec NODE name
// args...`) and returns its standard output. On failure the error includes
// the exit status and the standard error output.
func (l *Lab) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	return l.ExecInput(ctx, nil, name, args...)
}

// ExecInput is Exec with stdin fed to the command (for `nft -f -`,
// `iptables-restore` and the like).
func (l *Lab) ExecInput(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	return l.run(ctx, roleNode, stdin, name, args...)
}

// run runs a command in the namespace of r and returns its standard output.
func (l *Lab) run(ctx context.Context, r role, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, l.ipPath, append([]string{"netns", "exec", l.names[r], name}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s in namespace %s: %w: %s", name, l.names[r], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// execIn is run for commands whose output does not matter.
func (l *Lab) execIn(ctx context.Context, r role, stdin []byte, name string, args ...string) error {
	_, err := l.run(ctx, r, stdin, name, args...)
	return err
}

// FlushConntrack deletes every conntrack entry of the node namespace
// (`conntrack -F`). Send does not need it (each connection has a fresh
// source port); use it after replacing a ruleset if old flows must not keep
// their old NAT decisions.
func (l *Lab) FlushConntrack(ctx context.Context) error {
	if _, err := l.Exec(ctx, "conntrack", "-F"); err != nil {
		return fmt.Errorf("flush conntrack: %w", err)
	}
	return nil
}

// RemoveStale deletes lab namespaces left behind by processes that no longer
// run (a test binary killed before Close), and returns their names, sorted.
// Namespaces of running processes, including this one, are left alone.
func RemoveStale() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netlab: list namespaces: %w", err)
	}
	var stale []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), NamePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidText); err == nil {
			continue
		}
		stale = append(stale, e.Name())
	}
	if len(stale) == 0 {
		return nil, nil
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("netlab: iproute2 is needed: %w", err)
	}
	slices.Sort(stale)
	var del strings.Builder
	for _, n := range stale {
		fmt.Fprintf(&del, "netns delete %s\n", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := runIP(ctx, ipPath, "", del.String()); err != nil {
		return nil, fmt.Errorf("netlab: remove stale namespaces: %w", err)
	}
	return stale, nil
}
