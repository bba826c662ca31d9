package irdiff

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler/ir"
)

// svcView is a Service in the shape the comparison wants: lists with an
// identity become maps (go-cmp then pairs entries by key), lists without
// one are compared whole.
type svcView struct {
	Type                     string
	Headless                 bool
	ExternalName             string
	ClusterIPs               []netip.Addr
	ExternalIPs              []netip.Addr
	LoadBalancerIPs          []netip.Addr
	LoadBalancerSourceRanges []netip.Prefix
	SessionAffinity          string
	AffinityTimeout          time.Duration
	ExternalTrafficPolicy    string
	InternalTrafficPolicy    string
	HealthCheckNodePort      uint16
	PublishNotReadyAddresses bool
	// Ports by "name/PROTO".
	Ports map[string]portView
	// Endpoints by address.
	Endpoints map[string]epView
}

type portView struct {
	Port       uint16
	TargetPort string
	NodePort   uint16
}

type epView struct {
	// Ports by the Service port's "name/PROTO".
	Ports       map[string]uint16
	Hostname    string
	NodeName    string
	Zone        string
	Ready       bool
	Serving     bool
	Terminating bool
}

// portKey names a Service port by its identity (name, protocol).
func portKey(name string, proto ir.Protocol) string {
	if name == "" {
		name = "(unnamed)"
	}
	return name + "/" + string(proto)
}

func viewOf(s *ir.ServiceInfo) svcView {
	v := svcView{
		Type: s.Type, Headless: s.Headless, ExternalName: s.ExternalName,
		ClusterIPs: s.ClusterIPs, ExternalIPs: s.ExternalIPs, LoadBalancerIPs: s.LoadBalancerIPs,
		LoadBalancerSourceRanges: s.LoadBalancerSourceRanges,
		SessionAffinity:          s.SessionAffinity, AffinityTimeout: s.AffinityTimeout,
		ExternalTrafficPolicy: s.ExternalTrafficPolicy, InternalTrafficPolicy: s.InternalTrafficPolicy,
		HealthCheckNodePort: s.HealthCheckNodePort, PublishNotReadyAddresses: s.PublishNotReadyAddresses,
		Ports:     map[string]portView{},
		Endpoints: map[string]epView{},
	}
	for _, p := range s.Ports {
		v.Ports[portKey(p.Name, p.Protocol)] = portView{Port: p.Port, TargetPort: p.TargetPort, NodePort: p.NodePort}
	}
	for _, e := range s.Endpoints {
		ev := epView{Ports: map[string]uint16{}, Hostname: e.Hostname, NodeName: e.NodeName, Zone: e.Zone,
			Ready: e.Ready, Serving: e.Serving, Terminating: e.Terminating}
		for _, p := range e.Ports {
			ev.Ports[portKey(p.Name, p.Protocol)] = p.Port
		}
		v.Endpoints[e.Addr.String()] = ev
	}
	return v
}

// cmpOptions compare address lists as wholes (their order is meaningful:
// the primary cluster IP comes first) and never look into netip values.
var cmpOptions = cmp.Options{
	cmp.Comparer(func(a, b []netip.Addr) bool { return slices.Equal(a, b) }),
	cmp.Comparer(func(a, b []netip.Prefix) bool { return slices.Equal(a, b) }),
	cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

// leaf is one difference reported by go-cmp: the path (struct fields and
// map keys, as text) and the two values (invalid when absent).
type leaf struct {
	path   []string
	vx, vy reflect.Value
}

// reporter is a go-cmp Reporter collecting the unequal leaves.
type reporter struct {
	path  cmp.Path
	diffs []leaf
}

func (r *reporter) PushStep(ps cmp.PathStep) { r.path = append(r.path, ps) }

func (r *reporter) PopStep() { r.path = r.path[:len(r.path)-1] }

func (r *reporter) Report(rs cmp.Result) {
	if rs.Equal() {
		return
	}
	vx, vy := r.path.Last().Values()
	var p []string
	for _, s := range r.path {
		switch s := s.(type) {
		case cmp.StructField:
			p = append(p, s.Name())
		case cmp.MapIndex:
			p = append(p, fmt.Sprint(s.Key().Interface()))
		}
	}
	r.diffs = append(r.diffs, leaf{path: p, vx: vx, vy: vy})
}

// compare returns the unequal leaves of x and y, in go-cmp's order (struct
// fields in declaration order, map keys sorted).
func compare(x, y any) []leaf {
	r := &reporter{}
	cmp.Equal(x, y, cmpOptions, cmp.Reporter(r))
	return r.diffs
}

// diffServices compares two catalogs.
func diffServices(oldS, newS []ir.ServiceInfo) []ServiceChange {
	byID := func(list []ir.ServiceInfo) map[string]*ir.ServiceInfo {
		m := map[string]*ir.ServiceInfo{}
		for i := range list {
			m[list[i].ID()] = &list[i]
		}
		return m
	}
	om, nm := byID(oldS), byID(newS)
	var ids []string
	for id := range om {
		ids = append(ids, id)
	}
	for id := range nm {
		if _, ok := om[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := []ServiceChange{}
	for _, id := range ids {
		o, n := om[id], nm[id]
		switch {
		case o == nil:
			out = append(out, ServiceChange{Service: id, Change: Added, Summary: describeService(n), Changes: []Change{}})
		case n == nil:
			out = append(out, ServiceChange{Service: id, Change: Removed, Summary: describeService(o), Changes: []Change{}})
		default:
			ov, nv := viewOf(o), viewOf(n)
			if reflect.DeepEqual(ov, nv) {
				// Stricter than cmpOptions, and much cheaper than go-cmp:
				// most Services of a large diff did not change.
				continue
			}
			if ch := serviceChanges(ov, nv); len(ch) > 0 {
				out = append(out, ServiceChange{Service: id, Change: Changed, Summary: describeService(n), Changes: ch})
			}
		}
	}
	return out
}

// serviceChanges turns go-cmp's leaves into reviewer terms.
func serviceChanges(o, n svcView) []Change {
	var out []Change
	for _, d := range compare(o, n) {
		if len(d.path) == 0 {
			continue
		}
		c := Change{Change: kindOf(d)}
		switch d.path[0] {
		case "Ports":
			if len(d.path) < 2 {
				continue
			}
			c.Subject = "port " + d.path[1]
			if len(d.path) > 2 {
				c.Field = lowerFirst(d.path[2])
				c.Old, c.New = valueText(c.Field, d.vx), valueText(c.Field, d.vy)
			} else {
				c.Old, c.New = portText(d.vx), portText(d.vy)
			}
		case "Endpoints":
			if len(d.path) < 2 {
				continue
			}
			c.Subject = "endpoint " + d.path[1]
			switch {
			case len(d.path) == 2:
				c.Old, c.New = endpointText(d.vx), endpointText(d.vy)
			case d.path[2] == "Ports" && len(d.path) > 3:
				c.Field = "port " + d.path[3]
				c.Old, c.New = valueText("port", d.vx), valueText("port", d.vy)
			default:
				c.Field = lowerFirst(d.path[2])
				c.Old, c.New = valueText(c.Field, d.vx), valueText(c.Field, d.vy)
			}
		default:
			c.Field = lowerFirst(d.path[0])
			c.Change = Changed
			c.Old, c.New = valueText(c.Field, d.vx), valueText(c.Field, d.vy)
		}
		out = append(out, c)
	}
	return out
}

// kindOf says whether a leaf is an addition, a removal or a change.
func kindOf(d leaf) string {
	switch {
	case !d.vx.IsValid():
		return Added
	case !d.vy.IsValid():
		return Removed
	}
	return Changed
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// valueText spells a leaf value; "" for an absent one. Zero ports and
// empty strings and lists read "(none)".
func valueText(field string, v reflect.Value) string {
	if !v.IsValid() || !v.CanInterface() {
		return ""
	}
	switch x := v.Interface().(type) {
	case string:
		if x == "" {
			return "(none)"
		}
		return x
	case uint16:
		if x == 0 && field != "port" {
			return "(none)"
		}
		return strconv.Itoa(int(x))
	case bool:
		return strconv.FormatBool(x)
	case time.Duration:
		if x == 0 {
			return "(none)"
		}
		return x.String()
	case []netip.Addr:
		return listText(x)
	case []netip.Prefix:
		return listText(x)
	}
	return fmt.Sprint(v.Interface())
}

func listText[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "(none)"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}

func portText(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	p, ok := v.Interface().(portView)
	if !ok {
		return fmt.Sprint(v.Interface())
	}
	s := fmt.Sprintf("port %d -> targetPort %s", p.Port, p.TargetPort)
	if p.NodePort != 0 {
		s += fmt.Sprintf(", nodePort %d", p.NodePort)
	}
	return s
}

func endpointText(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	e, ok := v.Interface().(epView)
	if !ok {
		return fmt.Sprint(v.Interface())
	}
	parts := []string{conditionText(e.Ready, e.Serving, e.Terminating)}
	if e.NodeName != "" {
		parts = append(parts, "node "+e.NodeName)
	}
	if e.Zone != "" {
		parts = append(parts, "zone "+e.Zone)
	}
	if e.Hostname != "" {
		parts = append(parts, "hostname "+e.Hostname)
	}
	if len(e.Ports) > 0 {
		keys := make([]string, 0, len(e.Ports))
		for k := range e.Ports {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var ps []string
		for _, k := range keys {
			ps = append(ps, fmt.Sprintf("%s=%d", k, e.Ports[k]))
		}
		parts = append(parts, "ports "+strings.Join(ps, " "))
	}
	return strings.Join(parts, ", ")
}

func conditionText(ready, serving, terminating bool) string {
	switch {
	case ready && terminating:
		return "ready, terminating"
	case ready:
		return "ready"
	case serving && terminating:
		return "terminating (serving)"
	case terminating:
		return "terminating"
	case serving:
		return "not ready (serving)"
	}
	return "not ready"
}

// describeService is a one-line summary of a Service.
func describeService(s *ir.ServiceInfo) string {
	var parts []string
	switch {
	case s.Type == "ExternalName":
		return "ExternalName " + s.ExternalName
	case s.Headless:
		parts = append(parts, "headless")
	default:
		parts = append(parts, s.Type+" "+listText(s.ClusterIPs))
	}
	if len(s.Ports) > 0 {
		var ps []string
		for _, p := range s.Ports {
			t := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
			if p.Name != "" {
				t = p.Name + " " + t
			}
			if p.NodePort != 0 {
				t += fmt.Sprintf(" (nodePort %d)", p.NodePort)
			}
			ps = append(ps, t)
		}
		parts = append(parts, "ports "+strings.Join(ps, ", "))
	}
	ready := 0
	for _, e := range s.Endpoints {
		if e.Ready {
			ready++
		}
	}
	switch len(s.Endpoints) {
	case 0:
		parts = append(parts, "no endpoints")
	case 1:
		parts = append(parts, fmt.Sprintf("1 endpoint (%d ready)", ready))
	default:
		parts = append(parts, fmt.Sprintf("%d endpoints (%d ready)", len(s.Endpoints), ready))
	}
	return strings.Join(parts, ", ")
}
