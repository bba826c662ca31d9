package netlab

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// replyMagic starts every server reply: "kpc-netlab <endpoint> <peer>\n",
// where endpoint is the server's own ip:port and peer the ip:port it saw the
// connection come from.
const replyMagic = "kpc-netlab"

// maxReply bounds what a client reads.
const maxReply = 512

// formatReply builds a server reply.
func formatReply(ep, peer netip.AddrPort) []byte {
	return []byte(fmt.Sprintf("%s %s %s\n", replyMagic, ep, netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())))
}

// parseReply decodes a server reply.
func parseReply(b []byte) (ep, peer netip.AddrPort, err error) {
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != replyMagic {
		return ep, peer, fmt.Errorf("unexpected reply %q", b)
	}
	if ep, err = netip.ParseAddrPort(f[1]); err != nil {
		return ep, peer, fmt.Errorf("reply endpoint: %w", err)
	}
	if peer, err = netip.ParseAddrPort(f[2]); err != nil {
		return ep, peer, fmt.Errorf("reply peer: %w", err)
	}
	return ep, peer, nil
}

// servers runs the endpoint servers of a lab.
type servers struct {
	closers []io.Closer
	wg      sync.WaitGroup
}

// listen creates the sockets of eps inside the namespace open as nsFD and
// starts serving them. On error the sockets created so far stay registered
// and are released by close.
func (s *servers) listen(nsFD int, eps []Endpoint) error {
	var tcp []*net.TCPListener
	var tcpEP, udpEP []netip.AddrPort
	var udp []*net.UDPConn
	err := runInNS(nsFD, func() error {
		for _, e := range eps {
			ap := netip.AddrPortFrom(e.Addr, e.Port)
			switch e.Protocol {
			case "TCP":
				ln, err := net.ListenTCP(tcpNetwork(e.Addr), net.TCPAddrFromAddrPort(ap))
				if err != nil {
					return fmt.Errorf("listen TCP %s: %w", ap, err)
				}
				s.closers = append(s.closers, ln)
				tcp, tcpEP = append(tcp, ln), append(tcpEP, ap)
			case "UDP":
				c, err := net.ListenUDP(udpNetwork(e.Addr), net.UDPAddrFromAddrPort(ap))
				if err != nil {
					return fmt.Errorf("listen UDP %s: %w", ap, err)
				}
				s.closers = append(s.closers, c)
				udp, udpEP = append(udp, c), append(udpEP, ap)
			}
		}
		return nil
	})
	// Serve whatever was created, so that close has goroutines to stop
	// even after a partial failure.
	for i, ln := range tcp {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); serveTCP(ln, tcpEP[i]) }()
	}
	for i, c := range udp {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); serveUDP(c, udpEP[i]) }()
	}
	return err
}

// close stops every server and waits for its goroutine.
func (s *servers) close() error {
	var errs []error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	s.wg.Wait()
	return errors.Join(errs...)
}

// maxServeErrors bounds consecutive unexpected accept/read errors before a
// server gives up (it never spins forever).
const maxServeErrors = 1000

// serveTCP answers every connection with one reply and closes it.
func serveTCP(ln *net.TCPListener, ep netip.AddrPort) {
	failures := 0
	for failures < maxServeErrors {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			failures++
			time.Sleep(time.Millisecond)
			continue
		}
		failures = 0
		var peer netip.AddrPort
		if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			peer = ra.AddrPort()
		}
		_ = c.SetDeadline(time.Now().Add(time.Second))
		_, _ = c.Write(formatReply(ep, peer))
		_ = c.Close()
	}
}

// serveUDP answers every datagram with one reply datagram.
func serveUDP(c *net.UDPConn, ep netip.AddrPort) {
	buf := make([]byte, 2048)
	failures := 0
	for failures < maxServeErrors {
		_, peer, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			failures++
			continue
		}
		failures = 0
		_, _ = c.WriteToUDPAddrPort(formatReply(ep, peer), peer)
	}
}

// tcpNetwork is "tcp4" or "tcp6" for a.
func tcpNetwork(a netip.Addr) string {
	if a.Is4() {
		return "tcp4"
	}
	return "tcp6"
}

// udpNetwork is "udp4" or "udp6" for a.
func udpNetwork(a netip.Addr) string {
	if a.Is4() {
		return "udp4"
	}
	return "udp6"
}
