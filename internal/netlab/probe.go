package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Probe is a batch of identical connections from Src to Dst:Port.
//
// Where the socket lives follows from Src: a node IP or a loopback address
// puts it in the node namespace (its packets take the output hooks); an
// endpoint address puts it in the backend namespace (an endpoint reaching a
// Service, possibly landing on itself: hairpin); a client address puts it in
// the client namespace (its packets take the node's prerouting and forward
// hooks). Every socket is bound to Src and a fresh source port.
type Probe struct {
	Src, Dst netip.Addr
	Port     uint16
	// Protocol is "TCP" or "UDP" (case-insensitive, empty means "TCP");
	// "SCTP" is refused with ErrSCTP.
	Protocol string
	// Count is the number of connections (at most MaxCount); <= 0 means 1.
	// They run concurrently, at most maxParallel at a time.
	Count int
	// Timeout bounds the TCP handshake, or the UDP round trip, of each
	// connection (at most MaxTimeout); <= 0 means DefaultTimeout. An
	// unanswered (dropped) connection costs this much. Once a TCP handshake
	// is done the flow was not dropped, so the server's reply is awaited
	// for max(Timeout, ReplyTimeout) more: a loaded machine does not turn
	// answered connections into timeouts.
	Timeout time.Duration
	// FirstAlone runs the first connection on its own before the others
	// start, like a client that opens one connection and then many: what
	// the first one leaves in the kernel (a ClientIP affinity record) is in
	// place for the rest. Connections that start together race for it, in
	// kube-proxy's rulesets as in kpc's.
	FirstAlone bool
}

// Outcome counts what happened to the connections of a Probe. When Send
// returns no error, every connection lands in exactly one of Reached,
// Refused, TimedOut, Unreachable and Other, so Answered()+Refused+TimedOut+
// Unreachable+Other is the Probe's Count.
type Outcome struct {
	// Reached counts the connections answered by a lab server, keyed by the
	// server's own ip:port (the DNAT target actually used).
	Reached map[netip.AddrPort]int
	// SeenFrom counts the source addresses the answering servers saw. An
	// address other than the Probe's Src means the flow was source-NATed
	// (masqueraded) on the way; equal to Src means it was not.
	SeenFrom map[netip.Addr]int
	// Refused: TCP reset or ICMP port unreachable (a reject rule, or a DNAT
	// to an ip:port where no server listens). Other ICMP rejects (such as
	// administratively prohibited, EACCES) count as Other.
	Refused int
	// TimedOut: no answer within the Timeout (a drop rule). A datagram
	// dropped on the node's own output path makes the send fail with EPERM;
	// the probe still waits for the Timeout (a reject there queues an ICMP
	// error that turns it into Refused), and a remaining EPERM counts here.
	TimedOut int
	// Unreachable: ICMP host/network unreachable, or no route at the sender:
	// the packet was neither DNATed nor delivered and reached the upstream
	// router, which owns no such address.
	Unreachable int
	// Other: anything else (reset after connect, unexpected reply, ...);
	// OtherErrors says what, keyed by a short description.
	Other       int
	OtherErrors map[string]int
}

// Answered is the number of connections a server answered.
func (o Outcome) Answered() int {
	n := 0
	for _, v := range o.Reached {
		n += v
	}
	return n
}

// String summarises the outcome deterministically.
func (o Outcome) String() string {
	var b strings.Builder
	b.WriteString("reached {")
	b.WriteString(joinCounts(o.Reached, netip.AddrPort.Compare))
	b.WriteString("} seen-from {")
	b.WriteString(joinCounts(o.SeenFrom, netip.Addr.Compare))
	fmt.Fprintf(&b, "} refused %d timed-out %d unreachable %d other %d", o.Refused, o.TimedOut, o.Unreachable, o.Other)
	if len(o.OtherErrors) > 0 {
		fmt.Fprintf(&b, " {%s}", joinCounts(o.OtherErrors, strings.Compare))
	}
	return b.String()
}

// joinCounts renders "k: n, ..." sorted by key.
func joinCounts[K comparable](m map[K]int, cmp func(a, b K) int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%v: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

const (
	// DefaultTimeout is the per-connection timeout when Probe.Timeout is 0.
	DefaultTimeout = 300 * time.Millisecond
	// MaxTimeout is the largest Probe.Timeout accepted.
	MaxTimeout = time.Minute
	// ReplyTimeout is the least time a connected TCP probe waits for the
	// server's reply.
	ReplyTimeout = 2 * time.Second
	// MaxCount is the largest Probe.Count accepted.
	MaxCount = 10000
	// maxParallel bounds the connections of one Probe in flight at once.
	maxParallel = 16
	// maxBindTries bounds the source ports tried per connection.
	maxBindTries = 16
	// srcPortMin and srcPortMax delimit the source ports handed out, in
	// turn, to connections: below the kernel's ephemeral range and the
	// NodePort range, so that conntrack never sees a tuple twice within a
	// lab's life unless more than 18,000 connections are sent.
	srcPortMin = 12000
	srcPortMax = 29999
)

// ErrSCTP is returned for SCTP probes: the test kernel has no SCTP sockets.
var ErrSCTP = errors.New("netlab: SCTP cannot be probed (no SCTP sockets on this kernel)")

// probeMessage is what a UDP client sends.
var probeMessage = []byte("kpc-netlab probe\n")

// Send runs a Probe and counts the outcomes (see SendContext).
func (l *Lab) Send(p Probe) (Outcome, error) {
	return l.SendContext(context.Background(), p)
}

// SendContext runs a Probe: Count connections, concurrently, each bound to
// Src and a fresh source port (see Probe.Timeout for the time limits). TCP
// connects and reads the server's reply; UDP uses a connected socket that
// reports ICMP errors, sends one datagram and reads the reply. A reply must
// come back through the reverse NAT of the request: one that does not (say
// from an endpoint reaching itself through a Service without masquerade) is
// rejected by the client's socket and the connection times out. The error is
// non-nil only for an invalid probe, a closed lab, a cancelled ctx or a lab
// failure; what happened to the packets is in the Outcome.
func (l *Lab) SendContext(ctx context.Context, p Probe) (Outcome, error) {
	p, r, err := l.checkProbe(p)
	if err != nil {
		return Outcome{}, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return Outcome{}, errors.New("netlab: send on a closed lab")
	}
	out := Outcome{Reached: map[netip.AddrPort]int{}, SeenFrom: map[netip.Addr]int{}, OtherErrors: map[string]int{}}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, min(p.Count, maxParallel))
	)
	for i := range p.Count {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := l.attempt(ctx, r, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out.add(res)
		}()
		if i == 0 && p.FirstAlone {
			wg.Wait()
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return out, fmt.Errorf("netlab: send: %w", err)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("netlab: send %s: %w", p.Protocol, errs[0])
	}
	return out, nil
}

// checkProbe validates p, fills its defaults and finds the namespace of its
// source.
func (l *Lab) checkProbe(p Probe) (Probe, role, error) {
	proto, err := normalizeProtocol(p.Protocol)
	switch {
	case err != nil:
		return p, 0, fmt.Errorf("netlab: probe: %w", err)
	case proto == "SCTP":
		return p, 0, ErrSCTP
	case !p.Src.IsValid() || !p.Dst.IsValid():
		return p, 0, errors.New("netlab: probe: source and destination are required")
	case p.Port == 0:
		return p, 0, errors.New("netlab: probe: destination port 0")
	case p.Count > MaxCount:
		return p, 0, fmt.Errorf("netlab: probe: count %d above %d", p.Count, MaxCount)
	case p.Timeout > MaxTimeout:
		return p, 0, fmt.Errorf("netlab: probe: timeout %v above %v", p.Timeout, MaxTimeout)
	}
	p.Protocol = proto
	p.Src, p.Dst = p.Src.Unmap(), p.Dst.Unmap()
	if p.Src.Is4() != p.Dst.Is4() {
		return p, 0, fmt.Errorf("netlab: probe: %s and %s are of different families", p.Src, p.Dst)
	}
	p.Count = max(p.Count, 1)
	if p.Timeout <= 0 {
		p.Timeout = DefaultTimeout
	}
	switch {
	case p.Src.IsLoopback(), slices.Contains(l.plan.nodeIPs, p.Src):
		return p, roleNode, nil
	case slices.Contains(l.plan.backendAddrs, p.Src):
		return p, roleBackend, nil
	case slices.Contains(l.plan.clients, p.Src):
		return p, roleClient, nil
	}
	return p, 0, fmt.Errorf("netlab: probe: source %s is not a node, endpoint or client address of the lab", p.Src)
}

// outcome kinds of one connection.
type kind int

const (
	kindReached kind = iota
	kindRefused
	kindTimedOut
	kindUnreachable
	kindOther
)

// result is what happened to one connection.
type result struct {
	kind   kind
	ep     netip.AddrPort
	peer   netip.Addr
	detail string
}

// add counts one connection.
func (o *Outcome) add(r result) {
	switch r.kind {
	case kindReached:
		o.Reached[r.ep]++
		o.SeenFrom[r.peer]++
	case kindRefused:
		o.Refused++
	case kindTimedOut:
		o.TimedOut++
	case kindUnreachable:
		o.Unreachable++
	default:
		o.Other++
		o.OtherErrors[r.detail]++
	}
}

// srcPort hands out the next source port.
func (l *Lab) srcPort() uint16 {
	l.portMu.Lock()
	defer l.portMu.Unlock()
	p := l.nextPort
	l.nextPort++
	if l.nextPort > srcPortMax || l.nextPort < srcPortMin {
		l.nextPort = srcPortMin
	}
	return p
}

// attempt runs one connection from the namespace of r. It must run on its
// own goroutine (the thread is switched into the namespace meanwhile).
func (l *Lab) attempt(ctx context.Context, r role, p Probe) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	var res result
	err := withNS(l.fds[r], func() error {
		var err error
		res, err = l.exchange(ctx, p)
		return err
	})
	return res, err
}

// exchange connects, sends (UDP) and reads the reply. The error is non-nil
// only when no source port could be bound.
func (l *Lab) exchange(ctx context.Context, p Probe) (result, error) {
	network := tcpNetwork(p.Src)
	if p.Protocol == "UDP" {
		network = udpNetwork(p.Src)
	}
	dst := netip.AddrPortFrom(p.Dst, p.Port).String()
	var conn net.Conn
	var err error
	for range maxBindTries {
		local := netip.AddrPortFrom(p.Src, l.srcPort())
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local), Control: recvErrControl}
		if p.Protocol == "UDP" {
			d.LocalAddr = net.UDPAddrFromAddrPort(local)
		}
		conn, err = d.DialContext(ctx, network, dst)
		if !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	if errors.Is(err, unix.EADDRINUSE) {
		return result{}, fmt.Errorf("no free source port on %s: %w", p.Src, err)
	}
	if err != nil {
		return classify(err), nil
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok || p.Protocol == "TCP" {
		deadline = time.Now().Add(max(p.Timeout, ReplyTimeout))
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return classify(err), nil
	}
	var reply []byte
	if p.Protocol == "UDP" {
		// EPERM means the node's output path dropped the datagram; a
		// reject there also queues an ICMP error, which the read returns.
		if _, err := conn.Write(probeMessage); err != nil && !errors.Is(err, unix.EPERM) {
			return classify(err), nil
		}
		buf := make([]byte, maxReply)
		n, rerr := conn.Read(buf)
		reply, err = buf[:n], rerr
	} else {
		reply, err = io.ReadAll(io.LimitReader(conn, maxReply))
	}
	// A complete reply counts even if the connection failed afterwards.
	if ep, peer, perr := parseReply(reply); perr == nil {
		return result{kind: kindReached, ep: ep, peer: peer.Addr().Unmap()}, nil
	}
	if err != nil {
		return classify(err), nil
	}
	if len(reply) == 0 {
		return result{kind: kindOther, detail: "closed without reply"}, nil
	}
	return result{kind: kindOther, detail: "unexpected reply"}, nil
}

// recvErrControl makes a socket report every ICMP error. Without IP_RECVERR
// a connected UDP socket ignores "host unreachable", and a TCP socket that
// gets an ICMP error while connect() still holds its lock (the whole round
// trip through veths can run inside that call) only records a soft error and
// waits for the SYN retransmission; with it the error is queued, which wakes
// the connect, and SO_ERROR returns the soft error.
func recvErrControl(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set RECVERR: %w", err)
	}
	return nil
}

// classify maps a socket error to an outcome kind.
func classify(err error) result {
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return result{kind: kindRefused}
	case errors.Is(err, unix.EHOSTUNREACH), errors.Is(err, unix.ENETUNREACH):
		return result{kind: kindUnreachable}
	case errors.Is(err, unix.EPERM):
		// NF_DROP on the local output path.
		return result{kind: kindTimedOut}
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return result{kind: kindTimedOut}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return result{kind: kindTimedOut}
	}
	return result{kind: kindOther, detail: describeErr(err)}
}

// describeErr is a short description of err without addresses or ports, so
// that OtherErrors keys are stable across runs.
func describeErr(err error) string {
	var errno syscall.Errno
	hasErrno := errors.As(err, &errno)
	var op *net.OpError
	if errors.As(err, &op) {
		if hasErrno {
			return op.Op + ": " + errno.Error()
		}
		return op.Op + ": " + fmt.Sprintf("%T", op.Err)
	}
	if hasErrno {
		return errno.Error()
	}
	if errors.Is(err, io.EOF) {
		return "EOF"
	}
	return fmt.Sprintf("%T", err)
}
