package ir

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(rs *Ruleset)
		want string // substring of the error; "" means valid
	}{
		{name: "fixture is valid", mut: func(*Ruleset) {}},
		{name: "unknown family", mut: func(rs *Ruleset) { rs.Family = 5 }, want: "unknown family"},
		{name: "empty table", mut: func(rs *Ruleset) { rs.Table = "" }, want: "empty table"},
		{name: "zero mark", mut: func(rs *Ruleset) { rs.MasqMark = 0 }, want: "mark is zero"},
		{name: "missing goto target", mut: func(rs *Ruleset) {
			rs.Chains[7].Rules[1].Action = &Goto{Chain: "nope"}
		}, want: `goto: no such chain "nope"`},
		{name: "missing balance target", mut: func(rs *Ruleset) {
			rs.Chains[13].Rules[1].Action = &Balance{Chains: []string{"nope"}}
		}, want: `balance: no such chain "nope"`},
		{name: "empty balance", mut: func(rs *Ruleset) {
			rs.Chains[13].Rules[1].Action = &Balance{}
		}, want: "empty balance"},
		{name: "nil action", mut: func(rs *Ruleset) { rs.Chains[0].Rules[0].Action = nil }, want: "nil action"},
		{name: "missing dispatch chain", mut: func(rs *Ruleset) { rs.Services[0].Target.Chain = "nope" }, want: `no such chain "nope"`},
		{name: "target with two verdicts", mut: func(rs *Ruleset) { rs.Services[0].Target.Drop = true }, want: "exactly one"},
		{name: "no-endpoints entry with a chain", mut: func(rs *Ruleset) {
			rs.NoEndpoints[0].Target = Target{Chain: rs.Chains[0].Name}
		}, want: "must be drop or reject"},
		{name: "duplicate service key", mut: func(rs *Ruleset) {
			rs.Services = append(rs.Services, rs.Services[0])
		}, want: "duplicate key"},
		{name: "duplicate nodeport key", mut: func(rs *Ruleset) {
			rs.NodePorts = append(rs.NodePorts, rs.NodePorts[0])
		}, want: "duplicate key"},
		{name: "port zero", mut: func(rs *Ruleset) { rs.NodePorts[0].Port = 0 }, want: "port 0"},
		{name: "bad protocol", mut: func(rs *Ruleset) { rs.Services[0].Protocol = "ICMP" }, want: "unknown protocol"},
		{name: "missing affinity set in match", mut: func(rs *Ruleset) {
			rs.AffinitySets = nil
		}, want: "unknown affinity set"},
		{name: "duplicate chain", mut: func(rs *Ruleset) { rs.Chains = append(rs.Chains, rs.Chains[0]) }, want: "duplicate chain"},
		{name: "long chain name", mut: func(rs *Ruleset) {
			long := strings.Repeat("x", MaxNameLen+1)
			rs.Chains = append(rs.Chains, &Chain{Name: long, Kind: ServiceChain})
		}, want: fmt.Sprintf("limit %d", MaxNameLen)},
		{name: "IPv6 address in IPv4 ruleset", mut: func(rs *Ruleset) {
			rs.ClusterIPs = append(rs.ClusterIPs, netip.MustParseAddr("2001:db8::1"))
		}, want: "is not IPv4"},
		{name: "IPv6 DNAT in IPv4 ruleset", mut: func(rs *Ruleset) {
			rs.Chains[0].Rules[1].Action = &DNAT{Addr: netip.MustParseAddr("2001:db8::1"), Port: 80, Protocol: TCP}
		}, want: "is not IPv4"},
		{name: "IPv6 prefix in IPv4 match", mut: func(rs *Ruleset) {
			rs.Chains[10].Rules[0].Match.SrcNotIn = []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}
		}, want: "is not IPv4"},
		{name: "goto loop", mut: func(rs *Ruleset) {
			rs.Chains[0].Rules[0].Action = &Goto{Chain: rs.Chains[6].Name}
			rs.Chains[6].Rules[0].Action = &Goto{Chain: rs.Chains[0].Name}
		}, want: "goto loop"},
		{name: "balance loop", mut: func(rs *Ruleset) {
			rs.Chains[6].Rules[0].Action = &Balance{Chains: []string{rs.Chains[0].Name, rs.Chains[6].Name}}
		}, want: "goto loop"},
		{name: "loop behind an invalid match", mut: func(rs *Ruleset) {
			rs.Chains[6].Rules[0].Action = &Goto{Chain: rs.Chains[6].Name}
			rs.Chains[6].Rules[0].Match.DstAddr = netip.MustParseAddr("2001:db8::1")
		}, want: "goto loop"},
		{name: "localhost nodeports on IPv6", mut: func(rs *Ruleset) {
			rs.Family = IPv6
		}, want: "localhost nodeports on IPv6"},
		// Compact endpoint chains (chain 1 updates an affinity set).
		{name: "compact endpoint chains are valid", mut: func(rs *Ruleset) { compactEndpoints(rs) }},
		{name: "compact endpoint chain with rules", mut: func(rs *Ruleset) {
			compactEndpoints(rs)
			rs.Chains[0].Rules = []Rule{{Action: &Drop{}}}
		}, want: "compact endpoint chain"},
		{name: "compact chain of another kind", mut: func(rs *Ruleset) {
			compactEndpoints(rs)
			rs.Chains[0].Kind = ServiceChain
		}, want: "compact endpoint chain"},
		{name: "compact IPv6 DNAT in IPv4 ruleset", mut: func(rs *Ruleset) {
			compactEndpoints(rs)
			rs.Chains[0].Endpoint.DNAT.Addr = netip.MustParseAddr("2001:db8::1")
		}, want: "is not IPv4"},
		{name: "compact DNAT to port 0", mut: func(rs *Ruleset) {
			compactEndpoints(rs)
			rs.Chains[0].Endpoint.DNAT.Port = 0
		}, want: "rule 1: dnat to port 0"},
		{name: "compact update of an unknown set", mut: func(rs *Ruleset) {
			compactEndpoints(rs)
			rs.Chains[1].Endpoint.Update.Set = "nope"
		}, want: "update of unknown affinity set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fixture()
			tt.mut(p.Rulesets[0])
			err := p.Rulesets[0].Validate()
			// A caller's chain index gives the same verdict.
			if index := chainIndex(p.Rulesets[0]); index != nil {
				werr := p.ValidateWith([]map[string]int{index})
				if fmt.Sprint(werr) != fmt.Sprint(p.Validate()) {
					t.Errorf("ValidateWith() = %v, Validate() = %v", werr, p.Validate())
				}
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate() = nil, want error containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// compactEndpoints makes rs's endpoint chains compact (as the compiler
// builds them): hairpin, optional affinity update, DNAT.
func compactEndpoints(rs *Ruleset) {
	for _, c := range rs.Chains {
		if c.Kind != EndpointChain {
			continue
		}
		e := &EndpointTarget{}
		for _, r := range c.Rules {
			switch a := r.Action.(type) {
			case *DNAT:
				e.DNAT = *a
			case *AffinityUpdate:
				e.Update = *a
			}
		}
		c.Rules, c.Endpoint = nil, e
	}
}

// chainIndex is the index Program.ValidateWith trusts, or nil for a
// Ruleset with a nil chain or a name used twice.
func chainIndex(rs *Ruleset) map[string]int {
	index := map[string]int{}
	for i, c := range rs.Chains {
		if c == nil {
			return nil
		}
		if _, dup := index[c.Name]; dup {
			return nil
		}
		index[c.Name] = i
	}
	return index
}

func TestProgramValidate(t *testing.T) {
	v6 := &Ruleset{Family: IPv6, Table: "kpc", MasqMark: 0x4000}
	tests := []struct {
		name string
		p    *Program
		want string
	}{
		{name: "nil", p: nil, want: "nil program"},
		{name: "empty", p: &Program{}},
		{name: "v4 then v6", p: &Program{Rulesets: []*Ruleset{fixture().Rulesets[0], v6}}},
		{name: "v6 then v4", p: &Program{Rulesets: []*Ruleset{v6, fixture().Rulesets[0]}}, want: "IPv4 after IPv6"},
		{name: "duplicate family", p: &Program{Rulesets: []*Ruleset{v6, v6}}, want: "duplicate family"},
		{name: "nil ruleset", p: &Program{Rulesets: []*Ruleset{nil}}, want: "is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.p != nil {
				// Indexes for some Rulesets or none give the same verdict.
				index := make([]map[string]int, len(tt.p.Rulesets))
				for i, rs := range tt.p.Rulesets {
					if rs != nil && i%2 == 0 {
						index[i] = chainIndex(rs)
					}
				}
				if werr := tt.p.ValidateWith(index); fmt.Sprint(werr) != fmt.Sprint(err) {
					t.Errorf("ValidateWith() = %v, Validate() = %v", werr, err)
				}
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestValidateWithOddIndexes: an index without an entry per chain is not
// used, and a nil chain is reported even with an index.
func TestValidateWithOddIndexes(t *testing.T) {
	tests := []struct {
		name  string
		mut   func(rs *Ruleset)
		index func(rs *Ruleset) map[string]int
		want  string // "" means valid
	}{
		{name: "empty index", mut: func(*Ruleset) {}, index: func(*Ruleset) map[string]int { return map[string]int{} }},
		{name: "index short of a repeated name", mut: func(rs *Ruleset) { rs.Chains = append(rs.Chains, rs.Chains[0]) },
			index: func(rs *Ruleset) map[string]int { return chainIndex(&Ruleset{Chains: rs.Chains[:len(rs.Chains)-1]}) },
			want:  "duplicate chain"},
		{name: "nil chain with an entry per chain", mut: func(rs *Ruleset) { rs.Chains = append(rs.Chains, nil) },
			index: func(rs *Ruleset) map[string]int {
				m := chainIndex(&Ruleset{Chains: rs.Chains[:len(rs.Chains)-1]})
				m["other"] = len(rs.Chains) - 1
				return m
			},
			want: "is nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fixture()
			tt.mut(p.Rulesets[0])
			err := p.ValidateWith([]map[string]int{tt.index(p.Rulesets[0])})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("ValidateWith() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("ValidateWith() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
