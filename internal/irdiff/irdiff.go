// Package irdiff compares two compiled Programs for a reviewer: what a
// change to the manifests does to Services, to the fate of traffic and to
// the ruleset a node loads. It backs "kpc diff".
//
// A Report has four sections, each empty when nothing differs:
//
//   - Services: Services added, removed or changed, from the compiler's
//     catalog (ir.Program.Services) compared with go-cmp, ports keyed by
//     (name, protocol) and endpoints by address: type, addresses, ports,
//     policies, affinity, endpoints added, removed or changed (conditions,
//     ports, node, zone, hostname).
//   - Rulesets: per IP family, the node context and settings, every entry
//     of the dispatch maps (service-ips, service-nodeports, firewall-ips,
//     no-endpoint-services, no-endpoint-nodeports) keyed by destination,
//     chains keyed by name and affinity sets, compared with go-cmp.
//   - Traffic: the destinations whose fate changes, found by tracing
//     (ir.Trace, in the semantics of the chosen format) the first packet
//     of a connection to every dispatch key of either side from three
//     kinds of client: a pod (an address of the pod CIDR, or a packet on
//     the pods' interface, when the node has a local-traffic detector),
//     an external client (203.0.113.254 or 2001:db8:ffff::fe) and the
//     node itself, plus, for a load-balancer IP with source ranges, a
//     client inside the ranges. When the two sides tell pods apart
//     differently, the old side's pods are traced too. A fate is a verdict (dnat, reject, drop,
//     untouched), the set of endpoints reached and whether the packet is
//     masqueraded.
//   - Lines: the rendered rulesets of both sides (nft: one script;
//     iptables: one iptables-restore file per family present on either
//     side) compared line by line, as unified-diff hunks without context.
//
// # JSON schema (version 1)
//
// Report marshals to a stable JSON document; fields are never renamed or
// removed within a schema version, lists are never null:
//
//	{
//	  "schemaVersion": 1,
//	  "equal": false,                 // true when every section is empty
//	  "old": "OLD", "new": "NEW",     // the labels of the two sides
//	  "format": "nft",                // "nft" or "iptables"
//	  "services": [{
//	    "service": "ns/name",
//	    "change": "added|removed|changed",
//	    "summary": "ClusterIP 10.96.0.10, ports ...",  // the Service on the side that has it
//	    "changes": [{                                  // "changed" only
//	      "subject": "port dns/UDP",  // "" for the Service itself, "port NAME/PROTO", "endpoint ADDR"
//	      "field": "nodePort",        // "" when the subject is added or removed
//	      "change": "added|removed|changed",
//	      "old": "30053", "new": "30054"               // text; absent when empty
//	    }]
//	  }],
//	  "rulesets": [{
//	    "family": "IPv4|IPv6",
//	    "change": "added|removed|changed",
//	    "changes": [{"subject": "service-ips 10.96.0.10:53/udp", "field": "...", "change": "...", "old": "...", "new": "..."}]
//	  }],
//	  "traffic": [{
//	    "family": "IPv4|IPv6",
//	    "destination": "10.96.0.10:53/udp",   // or "NodePort 30080/tcp"
//	    "service": "ns/name:port",           // from the dispatch entry, may be ""
//	    "text": "now rejected (was endpoints {10.0.0.1:53})",
//	    "clients": [{                        // the clients that see this change
//	      "client": "pod|old-pod|external|node|allowed",
//	      "old": {"verdict": "dnat", "endpoints": ["10.0.0.1:53"], "masquerade": false},
//	      "new": {"verdict": "reject", "endpoints": [], "masquerade": false}
//	    }]
//	  }],
//	  "lines": [{
//	    "name": "nft",                       // or "iptables", "ip6tables"
//	    "hunks": [{"oldStart": 12, "oldLines": 1, "newStart": 12, "newLines": 2, "lines": ["-...", "+...", "+..."]}]
//	  }]
//	}
package irdiff

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"kpc/compiler/ir"
	"kpc/render"
)

// SchemaVersion is the version of the JSON form of Report.
const SchemaVersion = 1

// Options configure a comparison.
type Options struct {
	// Format is the ruleset format whose lines are compared and whose
	// semantics the traffic section traces: "nft" (the default) or
	// "iptables".
	Format string
	// OldName and NewName label the two sides in the report.
	OldName, NewName string
}

// Report is the difference between two Programs. See the package
// documentation for its sections and JSON schema.
type Report struct {
	SchemaVersion int             `json:"schemaVersion"`
	Equal         bool            `json:"equal"`
	Old           string          `json:"old"`
	New           string          `json:"new"`
	Format        string          `json:"format"`
	Services      []ServiceChange `json:"services"`
	Rulesets      []RulesetChange `json:"rulesets"`
	Traffic       []TrafficChange `json:"traffic"`
	Lines         []FileDiff      `json:"lines"`
}

// The values of a change's kind.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// Change is one difference inside a Service or a Ruleset.
type Change struct {
	// Subject is what changed inside the object: "" for the object
	// itself, "port NAME/PROTO", "endpoint ADDR", "service-ips KEY", ...
	Subject string `json:"subject,omitempty"`
	// Field is the changed field of Subject; empty when Subject itself
	// was added or removed.
	Field string `json:"field,omitempty"`
	// Change is Added, Removed or Changed.
	Change string `json:"change"`
	// Old and New are the values as text (absent on the side that has
	// none).
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// ServiceChange is a Service added, removed or changed.
type ServiceChange struct {
	Service string `json:"service"`
	Change  string `json:"change"`
	// Summary describes the Service (the new one, or the removed one).
	Summary string   `json:"summary"`
	Changes []Change `json:"changes"`
}

// RulesetChange is the difference of one family's Ruleset.
type RulesetChange struct {
	Family  string   `json:"family"`
	Change  string   `json:"change"`
	Changes []Change `json:"changes"`
}

// Fate is what happens to the first packet of a connection.
type Fate struct {
	// Verdict is "dnat", "reject", "drop", "untouched" or (iptables
	// format) "accept".
	Verdict string `json:"verdict"`
	// Endpoints are the "ip:port" endpoints a dnat can reach, sorted.
	Endpoints []string `json:"endpoints"`
	// Masquerade: the packet is (on some path) masqueraded to the node's
	// address.
	Masquerade bool `json:"masquerade"`
}

// TrafficChange is a destination whose fate changes, in the same words,
// for some clients.
type TrafficChange struct {
	Family string `json:"family"`
	// Destination is "ADDR:PORT/PROTO" or "NodePort PORT/PROTO".
	Destination string `json:"destination"`
	// Service is the comment of the dispatch entry ("ns/name:port"); the
	// new side's when both have one.
	Service string `json:"service"`
	// Text describes the change; it names the clients when not all of
	// them see it.
	Text string `json:"text"`
	// Clients are the clients that see this change, with their fates.
	Clients []ClientFate `json:"clients"`
}

// ClientFate is the old and new fate of one kind of client's packet.
type ClientFate struct {
	// Client is "pod" (a pod by the node's local-traffic detector: a
	// source in the pod CIDR, or a packet on the pods' interface),
	// "old-pod" (a pod by the old side's detector, when the sides' differ),
	// "external" (a source off the node, not a pod), "node" (a process on
	// the node) or, for load-balancer IPs with source ranges, "allowed" (a
	// source inside the ranges).
	Client string `json:"client"`
	Old    Fate   `json:"old"`
	New    Fate   `json:"new"`
}

// FileDiff is the line difference of one rendered file.
type FileDiff struct {
	Name  string `json:"name"`
	Hunks []Hunk `json:"hunks"`
}

// Hunk is a run of changed lines, in unified-diff terms without context:
// OldStart is the first removed line (or, when none is removed, the line
// after which lines are inserted), NewStart likewise; Lines are the
// removed lines prefixed "-" then the added ones prefixed "+".
type Hunk struct {
	OldStart int      `json:"oldStart"`
	OldLines int      `json:"oldLines"`
	NewStart int      `json:"newStart"`
	NewLines int      `json:"newLines"`
	Lines    []string `json:"lines"`
}

// Compare compares two Programs (nil is an empty Program). It fails only
// when a Program cannot be rendered or the format is unknown.
func Compare(oldP, newP *ir.Program, opts Options) (*Report, error) {
	if oldP == nil {
		oldP = &ir.Program{}
	}
	if newP == nil {
		newP = &ir.Program{}
	}
	format := cmp.Or(strings.ToLower(opts.Format), "nft")
	mode := ir.ModeNFT
	switch format {
	case "nft":
	case "iptables":
		mode = ir.ModeIPTables
	default:
		return nil, fmt.Errorf("format %q: want nft or iptables", opts.Format)
	}
	r := &Report{
		SchemaVersion: SchemaVersion,
		Old:           opts.OldName,
		New:           opts.NewName,
		Format:        format,
		Services:      diffServices(oldP.Services, newP.Services),
		Rulesets:      diffRulesets(oldP, newP),
		Traffic:       diffTraffic(oldP, newP, mode),
	}
	lines, err := diffRendered(oldP, newP, format)
	if err != nil {
		return nil, err
	}
	r.Lines = lines
	r.Equal = len(r.Services) == 0 && len(r.Rulesets) == 0 && len(r.Traffic) == 0 && len(r.Lines) == 0
	return r, nil
}

// diffRendered renders both sides in format and compares their lines.
func diffRendered(oldP, newP *ir.Program, format string) ([]FileDiff, error) {
	type file struct {
		name string
		r    render.Renderer
	}
	var files []file
	if format == "nft" {
		files = append(files, file{"nft", render.NFT{}})
	} else {
		has := func(f ir.Family) bool {
			return slices.ContainsFunc(append(slices.Clone(oldP.Rulesets), newP.Rulesets...), func(rs *ir.Ruleset) bool {
				return rs != nil && rs.Family == f
			})
		}
		if has(ir.IPv4) || !has(ir.IPv6) {
			files = append(files, file{"iptables", render.IPTables{Family: ir.IPv4}})
		}
		if has(ir.IPv6) {
			files = append(files, file{"ip6tables", render.IPTables{Family: ir.IPv6}})
		}
	}
	out := []FileDiff{}
	for _, f := range files {
		var a, b bytes.Buffer
		if err := f.r.Render(&a, oldP); err != nil {
			return nil, fmt.Errorf("rendering the old side (%s): %w", f.name, err)
		}
		if err := f.r.Render(&b, newP); err != nil {
			return nil, fmt.Errorf("rendering the new side (%s): %w", f.name, err)
		}
		if hunks := DiffLines(splitLines(a.String()), splitLines(b.String())); len(hunks) > 0 {
			out = append(out, FileDiff{Name: f.name, Hunks: hunks})
		}
	}
	return out, nil
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}
