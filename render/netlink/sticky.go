//go:build linux

package netlink

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"kpc/render/internal/nftdirect"
)

// The map sticky-clients (see package nftdirect) holds, for each client
// of a Service with session affinity and the Service's key (address,
// protocol, port), the endpoint the client sticks to. Traffic fills it,
// and an update keeps it, but an endpoint that leaves a Service must leave
// it too: kube-proxy's per-endpoint sets go away with their endpoint, and a
// client must not be sent to an endpoint that is gone.
//
// So when an update changes the endpoints of some keys (their elements of
// service-endpoints) or their affinity (their elements of
// sticky-timeouts), Sync reads sticky-clients and destroys, in the
// same batch, each element of such a key whose endpoint is no longer among
// the key's endpoints with affinity. A connection that records a client
// between that read and the commit can still name an old endpoint (it was
// chosen before the commit), so after the commit Sync reads the map once
// more and destroys what is stale in a second, small batch. "Destroy"
// (NFT_MSG_DESTROYSETELEM) is a delete that does not fail when the element
// has expired meanwhile.

// nftMsgDestroySetElem is NFT_MSG_DESTROYSETELEM (Linux 6.3), which the
// installed headers and x/sys/unix do not know yet.
const nftMsgDestroySetElem = 30

// stickyWork is what an update must check in sticky-clients of one table.
type stickyWork struct {
	table *nftables.Table
	// keys are the entry keys whose endpoints or affinity changed, as the
	// bytes of a key of service-endpoints without its bucket.
	keys map[string]bool
	// live holds, for each of those keys that still has affinity, its
	// endpoints (address and port bytes, as map data).
	live map[string]map[string]bool
	// keyLen is the length of an entry key in bytes.
	keyLen int
}

// stickyChanges finds, in an update of table spec, the entry keys whose
// clients may stick to endpoints that are gone. It returns nil when there
// are none, or when the table has no sticky-clients map on both sides.
func stickyChanges(spec *tableSpec, d *tableDiff, fam family) *stickyWork {
	if d.create || d.remove || !spec.hasSet(nftdirect.ClientsMap) {
		return nil
	}
	for _, s := range d.remakeSets {
		if s.set.Name == nftdirect.ClientsMap {
			return nil // remade empty
		}
	}
	w := &stickyWork{table: spec.table, keys: map[string]bool{}, live: map[string]map[string]bool{}}
	// An entry key is the address, the protocol and the port, each padded
	// to 4 bytes; an element of service-endpoints adds the bucket.
	w.keyLen = int(fam.addrLen) + 8
	note := func(op elemOp) {
		switch {
		case op.set.Name == nftdirect.EndpointsMap:
			for _, e := range op.elems {
				if len(e.Key) == w.keyLen+4 {
					w.keys[string(e.Key[:w.keyLen])] = true
				}
			}
		case op.set.Name == nftdirect.TimeoutsMap:
			for _, e := range op.elems {
				w.keys[string(e.Key)] = true
			}
		}
	}
	for _, op := range d.delElems {
		note(op)
	}
	for _, op := range d.addElems {
		note(op)
	}
	// sticky-timeouts or service-endpoints goes or is remade: every key
	// may have lost affinity, changed timeout or lost endpoints.
	all := false
	for _, s := range d.delSets {
		all = all || s.Name == nftdirect.TimeoutsMap || s.Name == nftdirect.EndpointsMap
	}
	if len(w.keys) == 0 && !all {
		return nil
	}
	// The keys that have affinity now, and their endpoints.
	sticky := map[string]bool{}
	for _, s := range spec.sets {
		if s.set.Name == nftdirect.TimeoutsMap {
			for _, e := range s.elems {
				sticky[string(e.Key)] = true
			}
		}
	}
	for _, s := range spec.sets {
		if s.set.Name != nftdirect.EndpointsMap {
			continue
		}
		for _, e := range s.elems {
			if len(e.Key) != w.keyLen+4 {
				continue
			}
			k := string(e.Key[:w.keyLen])
			if !sticky[k] || !all && !w.keys[k] {
				continue
			}
			if w.live[k] == nil {
				w.live[k] = map[string]bool{}
			}
			w.live[k][string(e.Val)] = true
		}
	}
	if all {
		w.keys = nil // every key
	}
	return w
}

// hasSet reports whether the table defines a set of that name.
func (t *tableSpec) hasSet(name string) bool {
	for _, s := range t.sets {
		if s.set.Name == name {
			return true
		}
	}
	return false
}

// stale reads sticky-clients and returns the elements to destroy: those
// of a checked key whose endpoint is not among the key's live endpoints.
func (w *stickyWork) stale(d *dumper) ([]nftables.SetElement, error) {
	s := &dumpedSet{name: nftdirect.ClientsMap}
	if err := d.elements(byte(w.table.Family), w.table.Name, s); err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	// A key of sticky-clients is the client's address followed by an
	// entry key.
	addrLen := w.keyLen - 8
	var out []nftables.SetElement
	for _, e := range s.elems {
		if len(e.key) != addrLen+w.keyLen {
			continue
		}
		k := e.key[addrLen:]
		if w.keys != nil && !w.keys[string(k)] {
			continue
		}
		if w.live[string(k)][string(e.data)] {
			continue
		}
		out = append(out, nftables.SetElement{Key: bytes.Clone(e.key)})
	}
	return out, nil
}

// destroyMessages encodes the destruction of elements of sticky-clients.
func destroyMessages(t *nftables.Table, elems []nftables.SetElement) ([]mdnetlink.Message, error) {
	set := &nftables.Set{Table: t, Name: nftdirect.ClientsMap}
	var out []mdnetlink.Message
	for _, c := range chunk(elems) {
		b := newRawBatch()
		if err := b.enc.SetDeleteElements(set, c); err != nil {
			return nil, fmt.Errorf("netlink: encoding: %w", err)
		}
		msgs, err := b.finish()
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			m.Header.Type = mdnetlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | nftMsgDestroySetElem)
			out = append(out, m)
		}
	}
	return out, nil
}
