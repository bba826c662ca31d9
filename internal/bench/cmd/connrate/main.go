// Command connrate measures what kpc's rulesets cost per packet: the rate
// of new TCP connections a client opens through a node (package netlab:
// client, node and backend network namespaces, real traffic) to one
// Service, when the node's ruleset holds that Service alone and when it
// holds 10,000 Services (synthetic single-port ClusterIP Services with 10
// endpoints each, kube-proxy's benchmark shape).
//
// The target is the last Service of the dispatch order (Ruleset.Services),
// which is where iptables' linear KPC-SERVICES chain is longest; nftables
// dispatches through a verdict map. Each ruleset is loaded into a fresh
// lab (nft -f; netlink, as "kpc apply" does; or iptables-legacy-restore
// --noflush and the hook jumps), checked with a few connections, warmed
// up, then timed over -rounds rounds of -conns connections (netlab sends
// 16 at a time); the median rate is reported. The client's address is in the cluster's pod range, so
// the flows are not masqueraded.
//
// It needs root, iproute2, nft and iptables-legacy; it creates and deletes
// its own namespaces ("kpcl-PID-…") and touches nothing else.
//
//	go run ./internal/bench/cmd/connrate
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"kpc/compiler/ir"
	"kpc/internal/bench"
	"kpc/internal/netlab"
	"kpc/render"
	"kpc/render/netlink"
)

// client is the source of the connections: a pod address (the synthetic
// cluster's pod range is 10.128.0.0/9) that no synthetic endpoint uses.
var client = netip.MustParseAddr("10.255.255.7")

type config struct {
	sizes     []int
	endpoints int
	conns     int
	rounds    int
	warmup    int
	timeout   time.Duration
	backends  []string
}

func main() {
	var c config
	sizes := flag.String("services", "1,10000", "comma-separated numbers of Services in the ruleset")
	backends := flag.String("backends", "nft,netlink,iptables-legacy", "comma-separated rulesets: nft, netlink, iptables-legacy")
	flag.IntVar(&c.endpoints, "endpoints", 10, "endpoints per Service")
	flag.IntVar(&c.conns, "conns", 2000, "connections per timed round")
	flag.IntVar(&c.rounds, "rounds", 5, "timed rounds (the median rate is reported)")
	flag.IntVar(&c.warmup, "warmup", 200, "connections before the timed rounds")
	flag.DurationVar(&c.timeout, "timeout", 300*time.Second, "time limit for each ruleset (setup, load and traffic)")
	flag.Parse()
	var err error
	for _, s := range strings.Split(*sizes, ",") {
		n, perr := strconv.Atoi(strings.TrimSpace(s))
		if perr != nil || n < 1 || n > 100000 {
			err = fmt.Errorf("-services: %q is not a number of Services (1-100000)", s)
		}
		c.sizes = append(c.sizes, n)
	}
	for _, b := range strings.Split(*backends, ",") {
		if b = strings.TrimSpace(b); b != "nft" && b != "netlink" && b != "iptables-legacy" {
			err = fmt.Errorf("-backends: %q: want nft, netlink or iptables-legacy", b)
		}
		c.backends = append(c.backends, b)
	}
	if err == nil {
		err = run(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "connrate:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, nft, iptables)")
	}
	if c.conns < 1 || c.conns > netlab.MaxCount || c.rounds < 1 || c.warmup < 0 || c.warmup > netlab.MaxCount {
		return fmt.Errorf("-conns and -warmup must be 1-%d, -rounds at least 1", netlab.MaxCount)
	}
	// Every connection of a lab has its own source port (netlab hands out
	// 18,000).
	if c.warmup+c.rounds*c.conns+100 > 18000 {
		return errors.New("-warmup + -rounds x -conns must stay below 17,900")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if stale, err := netlab.RemoveStale(); err == nil && len(stale) > 0 {
		fmt.Fprintf(os.Stderr, "connrate: removed stale lab namespaces %v\n", stale)
	}
	dir, err := os.MkdirTemp("", "connrate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Printf("connrate: new TCP connections per second from %s to the last Service of the dispatch order; "+
		"%d endpoints per Service; median of %d rounds of %d connections\n", client, c.endpoints, c.rounds, c.conns)
	fmt.Println()
	fmt.Println("| ruleset | Services | target | connections/s (median) | rounds (connections/s) |")
	fmt.Println("|---|---:|---|---:|---|")
	for _, n := range c.sizes {
		prog, err := bench.Program(dir, bench.Shape{Services: n, Endpoints: c.endpoints, Plain: true})
		if err != nil {
			return err
		}
		target, eps, err := lastService(prog)
		if err != nil {
			return err
		}
		for _, backend := range c.backends {
			rates, err := measure(ctx, c, prog, backend, target, eps)
			if err != nil {
				return fmt.Errorf("%s, %d Services: %w", backend, n, err)
			}
			var parts []string
			for _, r := range rates {
				parts = append(parts, strconv.Itoa(int(r)))
			}
			fmt.Printf("| %s | %d | %s | %d | %s |\n", backend, n, netip.AddrPortFrom(target.Addr, target.Port),
				int(median(rates)), strings.Join(parts, ", "))
		}
	}
	return nil
}

// lastService returns the last dispatch entry of the IPv4 Ruleset and the
// endpoints a connection to it may reach.
func lastService(prog *ir.Program) (ir.ServiceEntry, []netip.AddrPort, error) {
	if len(prog.Rulesets) == 0 || prog.Rulesets[0].Family != ir.IPv4 || len(prog.Rulesets[0].Services) == 0 {
		return ir.ServiceEntry{}, nil, errors.New("the program has no IPv4 Service")
	}
	rs := prog.Rulesets[0]
	e := rs.Services[len(rs.Services)-1]
	res := ir.Trace(prog, ir.Packet{Src: client, Dst: e.Addr, Protocol: e.Protocol, Port: e.Port}, ir.ModeIPTables)
	if res.Verdict != ir.VerdictDNAT {
		return e, nil, fmt.Errorf("%s: a connection is not DNATed (%v)", e.Comment, res.Verdict)
	}
	var eps []netip.AddrPort
	for _, r := range res.Reaches {
		if !slices.Contains(eps, r.Endpoint) {
			eps = append(eps, r.Endpoint)
		}
	}
	return e, eps, nil
}

// measure loads prog's rendering for backend into a new lab and returns the
// rate of each timed round.
func measure(ctx context.Context, c config, prog *ir.Program, backend string, target ir.ServiceEntry, eps []netip.AddrPort) ([]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cfg := netlab.Config{NodeIPs: prog.Rulesets[0].Node.IPs, Clients: []netip.Addr{client}}
	for _, ep := range eps {
		cfg.Endpoints = append(cfg.Endpoints, netlab.Endpoint{Addr: ep.Addr(), Port: ep.Port(), Protocol: "TCP"})
	}
	lab, err := netlab.New(cfg)
	if err != nil {
		return nil, err
	}
	defer lab.Close()
	if err := load(ctx, lab, prog, backend); err != nil {
		return nil, err
	}
	probe := netlab.Probe{Src: client, Dst: target.Addr, Port: target.Port, Protocol: "TCP", Timeout: time.Second}
	send := func(n int) (time.Duration, error) {
		p := probe
		p.Count = n
		start := time.Now()
		out, err := lab.SendContext(ctx, p)
		d := time.Since(start)
		if err != nil {
			return d, err
		}
		if out.Answered() != n {
			return d, fmt.Errorf("%d of %d connections answered: %v", out.Answered(), n, out)
		}
		return d, nil
	}
	if _, err := send(20); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	if c.warmup > 0 {
		if _, err := send(c.warmup); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	var rates []float64
	for range c.rounds {
		d, err := send(c.conns)
		if err != nil {
			return nil, err
		}
		rates = append(rates, float64(c.conns)/d.Seconds())
	}
	return rates, nil
}

// load loads prog into the lab's node.
func load(ctx context.Context, lab *netlab.Lab, prog *ir.Program, backend string) error {
	var b bytes.Buffer
	switch backend {
	case "nft":
		if err := (render.NFT{}).Render(&b, prog); err != nil {
			return err
		}
		_, err := lab.ExecInput(ctx, b.Bytes(), "nft", "-f", "-")
		return err
	case "netlink":
		_, err := netlink.Apply(prog, netlink.Options{NetNS: lab.NodeNSPath()})
		return err
	case "iptables-legacy":
		r := render.IPTables{Family: ir.IPv4}
		if err := r.Render(&b, prog); err != nil {
			return err
		}
		if _, err := lab.ExecInput(ctx, b.Bytes(), "iptables-legacy-restore", "-w", "60", "--noflush"); err != nil {
			return err
		}
		hooks, err := r.Hooks(prog)
		if err != nil {
			return err
		}
		for _, h := range hooks {
			if _, err := lab.Exec(ctx, "iptables-legacy", h.InsertArgs()...); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown ruleset %q", backend)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
