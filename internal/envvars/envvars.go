// Package envvars computes the Service environment variables that the
// kubelet injects into the containers of a new pod (Docker-link style
// variables, pod.spec.enableServiceLinks true, its default), from the
// compiler's Service catalog (ir.Program.Services), so that a reviewer can
// see what a change does to the environment of pods.
//
// The rules are kubelet's (pkg/kubelet/envvars and getServiceEnvVarMap):
//
//   - The Services considered are those of the pod's namespace with a
//     cluster IP (not headless, not ExternalName), plus default/kubernetes;
//     a Service named "kubernetes" in the pod's own namespace takes the
//     place of default/kubernetes.
//   - The value used for the address is spec.clusterIP, the primary cluster
//     IP (the first of ir.ServiceInfo.ClusterIPs, after offline allocation).
//   - Names are the Service name upper-cased with '-' replaced by '_'
//     (VarName). Per Service: {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT (the
//     first port), {SVC}_SERVICE_PORT_{PORTNAME} per named port, and the
//     Docker link variables {SVC}_PORT (URL of the first port) and per port
//     {SVC}_PORT_{PORT}_{PROTO}, ..._PROTO, ..._PORT and ..._ADDR. URLs are
//     "proto://host:port" with the protocol lower-cased and an IPv6 host in
//     brackets (net.JoinHostPort); ..._ADDR is the bare address.
//
// Order: the kubelet collects the variables in a Go map, so the order a
// container sees is unspecified; this package sorts them by name. When two
// Services produce the same variable name (say Service "a" with port 80/TCP
// and Service "a-port-80-tcp"), the kubelet's choice depends on map order;
// here the Service whose name sorts first wins and ForNamespace reports the
// collision.
package envvars

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"kpc/compiler/ir"
)

// Var is one environment variable.
type Var struct {
	Name  string
	Value string
	// Service is the "namespace/name" of the Service it comes from.
	Service string
}

// masterNamespace and masterService name the API server's Service, which
// every pod gets whatever its namespace.
const (
	masterNamespace = "default"
	masterService   = "kubernetes"
)

// VarName is kubelet's makeEnvVariableName: upper case, '-' as '_'.
func VarName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// ForNamespace returns the variables of a new pod in namespace ns, sorted
// by name, and one warning per variable name that several Services
// produce.
func ForNamespace(services []ir.ServiceInfo, ns string) ([]Var, []string) {
	chosen := map[string]*ir.ServiceInfo{}
	for i := range services {
		s := &services[i]
		if len(s.ClusterIPs) == 0 || s.Headless || s.Type == "ExternalName" {
			continue
		}
		switch {
		case s.Namespace == masterNamespace && s.Name == masterService:
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		case s.Namespace == ns:
			chosen[s.Name] = s
		}
	}
	names := make([]string, 0, len(chosen))
	for n := range chosen {
		names = append(names, n)
	}
	slices.Sort(names)
	byName := map[string]Var{}
	sources := map[string][]string{}
	for _, n := range names {
		// Within one Service a later variable replaces an earlier one
		// (kubelet's map assignment).
		own := map[string]Var{}
		for _, v := range FromService(chosen[n]) {
			own[v.Name] = v
		}
		for name, v := range own {
			if _, dup := byName[name]; !dup {
				byName[name] = v
			}
			sources[name] = append(sources[name], v.Service)
		}
	}
	for _, src := range sources {
		slices.Sort(src)
	}
	out := make([]Var, 0, len(byName))
	for _, v := range byName {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Var) int { return cmp.Compare(a.Name, b.Name) })
	var warnings []string
	for _, v := range out {
		if src := sources[v.Name]; len(src) > 1 {
			warnings = append(warnings, fmt.Sprintf("%s is set by Services %s; the kubelet's choice is unspecified, %s is shown",
				v.Name, strings.Join(src, ", "), v.Service))
		}
	}
	return out, warnings
}

// FromService returns the variables of one Service in kubelet's order
// (envvars.FromServices); none when it has no cluster IP or no port. A
// later variable of the same name replaces an earlier one in the kubelet.
func FromService(s *ir.ServiceInfo) []Var {
	if len(s.ClusterIPs) == 0 || len(s.Ports) == 0 {
		return nil
	}
	id := s.ID()
	ip := s.ClusterIPs[0].String()
	prefix := VarName(s.Name)
	out := []Var{
		{Name: prefix + "_SERVICE_HOST", Value: ip, Service: id},
		{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(s.Ports[0].Port)), Service: id},
	}
	for _, p := range s.Ports {
		if p.Name != "" {
			out = append(out, Var{Name: prefix + "_SERVICE_PORT_" + VarName(p.Name), Value: strconv.Itoa(int(p.Port)), Service: id})
		}
	}
	for i, p := range s.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(ir.TCP)
		}
		port := strconv.Itoa(int(p.Port))
		url := strings.ToLower(proto) + "://" + net.JoinHostPort(ip, port)
		if i == 0 {
			out = append(out, Var{Name: prefix + "_PORT", Value: url, Service: id})
		}
		pp := prefix + "_PORT_" + port + "_" + strings.ToUpper(proto)
		out = append(out,
			Var{Name: pp, Value: url, Service: id},
			Var{Name: pp + "_PROTO", Value: strings.ToLower(proto), Service: id},
			Var{Name: pp + "_PORT", Value: port, Service: id},
			Var{Name: pp + "_ADDR", Value: ip, Service: id},
		)
	}
	return out
}

// WriteShell writes vars as "export NAME='value'" lines that a POSIX shell
// can source (a single quote inside a value ends the quoted string, is
// written backslash-escaped, and the quoted string resumes).
func WriteShell(w io.Writer, vars []Var) error {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString("export ")
		b.WriteString(v.Name)
		b.WriteString("='")
		b.WriteString(strings.ReplaceAll(v.Value, "'", `'\''`))
		b.WriteString("'\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing environment: %w", err)
	}
	return nil
}
