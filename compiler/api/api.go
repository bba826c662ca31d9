// Package api holds the typed Kubernetes objects kpc reads: the subset of
// v1 Service, discovery.k8s.io/v1 EndpointSlice, v1 Endpoints, v1 Node and
// kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration that decides a
// packet's fate. Field names and JSON tags follow the Kubernetes API. Values
// here have been validated and defaulted by the loader (package load); the
// compiler may rely on that.
package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"kpc/compiler/diag"
)

// Input is every object of a compile, in input order.
type Input struct {
	Services       []*Service
	EndpointSlices []*EndpointSlice
	// Endpoints are read for Services without a selector, whose
	// EndpointSlices the mirroring controller makes from them.
	Endpoints    []*Endpoints
	Nodes        []*Node
	ProxyConfigs []*KubeProxyConfiguration
	// ServiceCIDRs are the cluster's Service ranges, as kube-proxy
	// watches them.
	ServiceCIDRs []*ServiceCIDR
	// Invalid names the documents the loader left out as invalid, by
	// position; none when the input is valid. An Input with any is not
	// compiled into rules: it is only checked across documents
	// (load.CrossCheck and compiler.Compile), as far as these documents
	// cannot change the verdict (see Invalid).
	Invalid []Invalid
}

// Invalid is a document the loader left out as invalid, named as far as
// it could be read. Each is taken to be, once fixed, the object it names:
// the checks across documents judge the valid objects only where that
// object cannot change the verdict, so that what they report of an input
// with invalid documents is still reported once those are fixed:
//
//   - a conflict between two valid objects (an address or port given to
//     two Services, a name defined twice, an endpoint in two slices with
//     different conditions) is reported: fixing another document cannot
//     take it away; a conflict with an invalid document is not judged,
//     nor is a valid object that an invalid document names too (which of
//     the two is the object depends on the invalid one);
//   - a slice or Endpoints is checked against its Service when that is
//     valid, and is not said to have no Service in the input when an
//     invalid document is, or may be, that Service;
//   - nothing is judged that depends on the whole input: the cluster IPs
//     and nodePorts allocated to Services without them (a range that
//     runs out, an allocated address that another Service uses too), nor,
//     when an invalid document is or may be a Node, KubeProxyConfiguration
//     or ServiceCIDR, what depends on the cluster configuration those
//     give (a family not configured, the configuration's own findings).
type Invalid struct {
	// Pos is where the document starts, or where the problem is when no
	// document could be read.
	Pos diag.Pos
	// Kind is the document's kind, one that kpc reads; it is "" when that
	// could not be read (a syntax error, a document without apiVersion
	// and kind or with an apiVersion kpc does not read, a file that
	// cannot be read): there, any number of documents of any kind may be
	// left out, and each may be any object the input does not hold.
	Kind string
	// Namespace ("default" when not given, for the namespaced kinds) and
	// Name are the document's as written; Name is "" when not given (or
	// not read), and the object may then be any of its kind.
	Namespace, Name string
}

// InvalidIndex answers what an Input's invalid documents are, or may be.
// A nil *InvalidIndex is that of a valid input: there are none.
type InvalidIndex struct {
	named   map[invalidKey]bool
	unnamed map[string]bool // kinds with a document whose name was not read
	unread  bool            // a document whose kind was not read
}

type invalidKey struct{ kind, ns, name string }

// NewInvalidIndex indexes docs; it returns nil when there are none.
func NewInvalidIndex(docs []Invalid) *InvalidIndex {
	if len(docs) == 0 {
		return nil
	}
	x := &InvalidIndex{named: map[invalidKey]bool{}, unnamed: map[string]bool{}}
	for _, d := range docs {
		switch {
		case d.Kind == "":
			x.unread = true
		case d.Name == "":
			x.unnamed[d.Kind] = true
		default:
			x.named[invalidKey{d.Kind, d.Namespace, d.Name}] = true
		}
	}
	return x
}

// Is reports whether an invalid document is the object of kind kind in
// namespace ns ("" for the kinds without one) named name.
func (x *InvalidIndex) Is(kind, ns, name string) bool {
	return x != nil && x.named[invalidKey{kind, ns, name}]
}

// MayBe reports whether an invalid document is, or may be, the object of
// kind kind in namespace ns named name; name "" stands for any object of
// the kind.
func (x *InvalidIndex) MayBe(kind, ns, name string) bool {
	if x == nil {
		return false
	}
	if x.unread || x.unnamed[kind] {
		return true
	}
	if name != "" {
		return x.named[invalidKey{kind, ns, name}]
	}
	for k := range x.named {
		if k.kind == kind {
			return true
		}
	}
	return false
}

// ObjectMeta is the part of metadata kpc uses.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Service is a v1 Service.
type Service struct {
	// Pos is where the document starts.
	Pos        diag.Pos      `json:"-"`
	APIVersion string        `json:"apiVersion"`
	Kind       string        `json:"kind"`
	Metadata   ObjectMeta    `json:"metadata"`
	Spec       ServiceSpec   `json:"spec"`
	Status     ServiceStatus `json:"status,omitempty"`
}

// ID returns "ns/name".
func (s *Service) ID() string { return s.Metadata.Namespace + "/" + s.Metadata.Name }

// ServiceSpec is a Service's spec.
type ServiceSpec struct {
	Type                          string                 `json:"type,omitempty"`
	Selector                      map[string]string      `json:"selector,omitempty"`
	Ports                         []ServicePort          `json:"ports,omitempty"`
	ClusterIP                     string                 `json:"clusterIP,omitempty"`
	ClusterIPs                    []string               `json:"clusterIPs,omitempty"`
	IPFamilies                    []string               `json:"ipFamilies,omitempty"`
	IPFamilyPolicy                string                 `json:"ipFamilyPolicy,omitempty"`
	ExternalIPs                   []string               `json:"externalIPs,omitempty"`
	ExternalName                  string                 `json:"externalName,omitempty"`
	SessionAffinity               string                 `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig         *SessionAffinityConfig `json:"sessionAffinityConfig,omitempty"`
	ExternalTrafficPolicy         string                 `json:"externalTrafficPolicy,omitempty"`
	InternalTrafficPolicy         string                 `json:"internalTrafficPolicy,omitempty"`
	LoadBalancerSourceRanges      []string               `json:"loadBalancerSourceRanges,omitempty"`
	LoadBalancerIP                string                 `json:"loadBalancerIP,omitempty"`
	LoadBalancerClass             *string                `json:"loadBalancerClass,omitempty"`
	AllocateLoadBalancerNodePorts *bool                  `json:"allocateLoadBalancerNodePorts,omitempty"`
	HealthCheckNodePort           int32                  `json:"healthCheckNodePort,omitempty"`
	PublishNotReadyAddresses      bool                   `json:"publishNotReadyAddresses,omitempty"`
	TrafficDistribution           *string                `json:"trafficDistribution,omitempty"`
}

// ServicePort is one entry of spec.ports.
type ServicePort struct {
	Name        string      `json:"name,omitempty"`
	Protocol    string      `json:"protocol,omitempty"`
	AppProtocol *string     `json:"appProtocol,omitempty"`
	Port        int32       `json:"port"`
	TargetPort  IntOrString `json:"targetPort,omitempty"`
	NodePort    int32       `json:"nodePort,omitempty"`
}

// SessionAffinityConfig holds the ClientIP affinity timeout.
type SessionAffinityConfig struct {
	ClientIP *ClientIPConfig `json:"clientIP,omitempty"`
}

// ClientIPConfig holds timeoutSeconds.
type ClientIPConfig struct {
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
}

// ServiceStatus is a Service's status.
type ServiceStatus struct {
	LoadBalancer LoadBalancerStatus `json:"loadBalancer,omitempty"`
}

// LoadBalancerStatus lists the load balancer's ingress points.
type LoadBalancerStatus struct {
	Ingress []LoadBalancerIngress `json:"ingress,omitempty"`
}

// LoadBalancerIngress is one ingress point; IPMode "Proxy" is not programmed.
type LoadBalancerIngress struct {
	IP       string  `json:"ip,omitempty"`
	Hostname string  `json:"hostname,omitempty"`
	IPMode   *string `json:"ipMode,omitempty"`
}

// IntOrString is a value that is an int or a string (targetPort).
type IntOrString struct {
	IsString bool
	IntVal   int32
	StrVal   string
}

// UnmarshalJSON accepts a JSON number or string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsString = true
		return json.Unmarshal(b, &v.StrVal)
	}
	var i int64
	if err := json.Unmarshal(b, &i); err != nil {
		return fmt.Errorf("int or string: %w", err)
	}
	if i < -1<<31 || i >= 1<<31 {
		return fmt.Errorf("int or string: %d out of range", i)
	}
	*v = IntOrString{IntVal: int32(i)}
	return nil
}

// MarshalJSON writes a number or a string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

// String returns the value as text.
func (v IntOrString) String() string {
	if v.IsString {
		return v.StrVal
	}
	return strconv.Itoa(int(v.IntVal))
}

// EndpointSlice is a discovery.k8s.io/v1 EndpointSlice.
type EndpointSlice struct {
	Pos         diag.Pos       `json:"-"`
	APIVersion  string         `json:"apiVersion"`
	Kind        string         `json:"kind"`
	Metadata    ObjectMeta     `json:"metadata"`
	AddressType string         `json:"addressType"`
	Endpoints   []Endpoint     `json:"endpoints,omitempty"`
	Ports       []EndpointPort `json:"ports,omitempty"`
}

// ID returns "ns/name".
func (s *EndpointSlice) ID() string { return s.Metadata.Namespace + "/" + s.Metadata.Name }

// Labels kube-proxy and the EndpointSlice controllers read.
const (
	// ServiceNameLabel ties an EndpointSlice to its Service.
	ServiceNameLabel = "kubernetes.io/service-name"
	// ManagedByLabel names the controller that manages an EndpointSlice.
	ManagedByLabel = "endpointslice.kubernetes.io/managed-by"
	// MirroringController is the ManagedByLabel value of the slices the
	// EndpointSlice mirroring controller makes of Endpoints.
	MirroringController = "endpointslicemirroring-controller.k8s.io"
	// ServiceProxyNameLabel names the proxy that serves a Service (and its
	// EndpointSlices) instead of kube-proxy, whose informers select only
	// objects without it.
	ServiceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
	// HeadlessLabel marks the EndpointSlices of a headless Service, which
	// kube-proxy's informers leave out.
	HeadlessLabel = "service.kubernetes.io/headless"
	// SkipMirrorLabel set to "true" on an Endpoints keeps the EndpointSlice
	// mirroring controller from mirroring it.
	SkipMirrorLabel = "endpointslice.kubernetes.io/skip-mirror"
	// LeaderAnnotation marks an Endpoints used as a leader-election lock,
	// which the mirroring controller does not mirror.
	LeaderAnnotation = "control-plane.alpha.kubernetes.io/leader"
)

// Unwatched reports whether kube-proxy's informers leave out an object
// with these labels: they select neither another proxy's objects nor a
// headless Service's.
func Unwatched(labels map[string]string) bool {
	_, other := labels[ServiceProxyNameLabel]
	_, headless := labels[HeadlessLabel]
	return other || headless
}

// Mirrored reports whether the EndpointSlice mirroring controller mirrors
// e for kube-proxy, its Service being one without a selector: not when it
// is labelled skip-mirror, nor a leader-election lock; and its slices,
// which carry its labels, would be left out by kube-proxy when it is
// labelled for another proxy (or as a headless Service's).
func (e *Endpoints) Mirrored() bool {
	_, leader := e.Metadata.Annotations[LeaderAnnotation]
	return e.Metadata.Labels[SkipMirrorLabel] != "true" && !leader && !Unwatched(e.Metadata.Labels)
}

// Endpoint is one endpoint of a slice.
type Endpoint struct {
	Addresses  []string           `json:"addresses"`
	Conditions EndpointConditions `json:"conditions,omitempty"`
	Hostname   *string            `json:"hostname,omitempty"`
	NodeName   *string            `json:"nodeName,omitempty"`
	Zone       *string            `json:"zone,omitempty"`
	Hints      *EndpointHints     `json:"hints,omitempty"`
}

// EndpointConditions are the endpoint's conditions; nil ready and serving
// mean true, nil terminating means false (kube-proxy's reading).
type EndpointConditions struct {
	Ready       *bool `json:"ready,omitempty"`
	Serving     *bool `json:"serving,omitempty"`
	Terminating *bool `json:"terminating,omitempty"`
}

// EndpointHints are topology hints.
type EndpointHints struct {
	ForZones []ForZone `json:"forZones,omitempty"`
	ForNodes []ForNode `json:"forNodes,omitempty"`
}

// ForZone names a zone.
type ForZone struct {
	Name string `json:"name"`
}

// ForNode names a node.
type ForNode struct {
	Name string `json:"name"`
}

// EndpointPort is one entry of an EndpointSlice's ports. A nil Port means
// "all ports" and is never programmed.
type EndpointPort struct {
	Name        *string `json:"name,omitempty"`
	Protocol    *string `json:"protocol,omitempty"`
	Port        *int32  `json:"port,omitempty"`
	AppProtocol *string `json:"appProtocol,omitempty"`
}

// Endpoints is a v1 Endpoints. kube-proxy reads only EndpointSlices; the
// EndpointSlice mirroring controller makes them from the Endpoints of a
// Service without a selector.
type Endpoints struct {
	Pos        diag.Pos         `json:"-"`
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   ObjectMeta       `json:"metadata"`
	Subsets    []EndpointSubset `json:"subsets,omitempty"`
}

// ID returns "ns/name".
func (e *Endpoints) ID() string { return e.Metadata.Namespace + "/" + e.Metadata.Name }

// EndpointSubset is a group of addresses that share ports.
type EndpointSubset struct {
	Addresses         []EndpointAddress `json:"addresses,omitempty"`
	NotReadyAddresses []EndpointAddress `json:"notReadyAddresses,omitempty"`
	Ports             []EndpointsPort   `json:"ports,omitempty"`
}

// EndpointAddress is one address of a subset.
type EndpointAddress struct {
	IP       string  `json:"ip"`
	Hostname string  `json:"hostname,omitempty"`
	NodeName *string `json:"nodeName,omitempty"`
}

// EndpointsPort is one port of a subset (core/v1 EndpointPort).
type EndpointsPort struct {
	Name        string  `json:"name,omitempty"`
	Port        int32   `json:"port"`
	Protocol    string  `json:"protocol,omitempty"`
	AppProtocol *string `json:"appProtocol,omitempty"`
}

// ServiceCIDR is a networking.k8s.io/v1 ServiceCIDR.
type ServiceCIDR struct {
	Pos        diag.Pos        `json:"-"`
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   ObjectMeta      `json:"metadata"`
	Spec       ServiceCIDRSpec `json:"spec,omitempty"`
}

// ServiceCIDRSpec holds the ranges: at most one per IP family.
type ServiceCIDRSpec struct {
	CIDRs []string `json:"cidrs,omitempty"`
}

// Node is a v1 Node.
type Node struct {
	Pos        diag.Pos   `json:"-"`
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       NodeSpec   `json:"spec,omitempty"`
	Status     NodeStatus `json:"status,omitempty"`
}

// ZoneLabel is the well-known topology zone label.
const ZoneLabel = "topology.kubernetes.io/zone"

// NodeSpec holds the pod CIDRs.
type NodeSpec struct {
	PodCIDR  string   `json:"podCIDR,omitempty"`
	PodCIDRs []string `json:"podCIDRs,omitempty"`
}

// NodeStatus holds the node's addresses.
type NodeStatus struct {
	Addresses []NodeAddress `json:"addresses,omitempty"`
}

// NodeAddress is one address ("InternalIP", "ExternalIP", "Hostname", ...).
type NodeAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// KubeProxyConfiguration is the part of kube-proxy's configuration kpc uses.
type KubeProxyConfiguration struct {
	Pos               diag.Pos        `json:"-"`
	APIVersion        string          `json:"apiVersion"`
	Kind              string          `json:"kind"`
	HostnameOverride  string          `json:"hostnameOverride,omitempty"`
	BindAddress       string          `json:"bindAddress,omitempty"`
	ClusterCIDR       string          `json:"clusterCIDR,omitempty"`
	NodePortAddresses []string        `json:"nodePortAddresses,omitempty"`
	MasqueradeAll     bool            `json:"masqueradeAll,omitempty"`
	IPTables          IPTablesConfig  `json:"iptables,omitempty"`
	Mode              string          `json:"mode,omitempty"`
	DetectLocalMode   string          `json:"detectLocalMode,omitempty"`
	DetectLocal       DetectLocal     `json:"detectLocal,omitempty"`
	NFTables          NFTablesConfig  `json:"nftables,omitempty"`
	Conntrack         ConntrackConfig `json:"conntrack,omitempty"`
}

// DetectLocal is the detectLocal section of KubeProxyConfiguration: the
// interface of the local-traffic detectors by interface.
type DetectLocal struct {
	// BridgeInterface is the bridge of the node's pods (detectLocalMode
	// BridgeInterface): traffic that arrives on it is from a local pod.
	BridgeInterface string `json:"bridgeInterface,omitempty"`
	// InterfaceNamePrefix starts the names of the node's pod interfaces
	// (detectLocalMode InterfaceNamePrefix).
	InterfaceNamePrefix string `json:"interfaceNamePrefix,omitempty"`
}

// ConntrackConfig is the conntrack section of KubeProxyConfiguration.
type ConntrackConfig struct {
	// TCPBeLiberal: kube-proxy sets nf_conntrack_tcp_be_liberal and, in
	// iptables mode, does not drop packets conntrack finds INVALID.
	TCPBeLiberal bool `json:"tcpBeLiberal,omitempty"`
}

// IPTablesConfig is the iptables section of KubeProxyConfiguration.
type IPTablesConfig struct {
	MasqueradeAll      bool   `json:"masqueradeAll,omitempty"`
	MasqueradeBit      *int32 `json:"masqueradeBit,omitempty"`
	LocalhostNodePorts *bool  `json:"localhostNodePorts,omitempty"`
}

// NFTablesConfig is the nftables section of KubeProxyConfiguration.
type NFTablesConfig struct {
	MasqueradeAll bool   `json:"masqueradeAll,omitempty"`
	MasqueradeBit *int32 `json:"masqueradeBit,omitempty"`
}

// SameObject reports whether two documents hold the same object, where
// they are aside (pos gives a document's position): the second is then a
// copy that kubectl applies unchanged.
func SameObject[T any](a, b *T, pos func(*T) *diag.Pos) bool {
	x, y := *a, *b
	*pos(&x), *pos(&y) = diag.Pos{}, diag.Pos{}
	return reflect.DeepEqual(x, y)
}
