package ir

import "testing"

// TestRuleList checks the rules a compact endpoint chain stands for, with
// and without affinity, and that a chain with Rules gives them unchanged.
func TestRuleList(t *testing.T) {
	ep := a("10.0.0.1")
	d := DNAT{Addr: ep, Port: 80, Protocol: TCP}
	for _, tt := range []struct {
		name string
		c    *Chain
		want string
	}{
		{"plain", &Chain{Kind: EndpointChain, Endpoint: &EndpointTarget{DNAT: d}},
			"ip saddr 10.0.0.1 -> mark-masq (hairpin)|dnat tcp to 10.0.0.1:80|"},
		{"affinity", &Chain{Kind: EndpointChain, Endpoint: &EndpointTarget{DNAT: d, Update: AffinityUpdate{Set: "aff"}}},
			"ip saddr 10.0.0.1 -> mark-masq (hairpin)|affinity-update @aff|dnat tcp to 10.0.0.1:80|"},
		{"rules", &Chain{Rules: []Rule{{Action: &Drop{}}}}, "drop|"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			for _, r := range tt.c.RuleList() {
				s := ActionString(r.Action)
				if m := matchString("ip", &Node{}, &r.Match); m != "" {
					s = m + " -> " + s
				}
				if r.Comment != "" {
					s += " (" + r.Comment + ")"
				}
				got += s + "|"
			}
			if got != tt.want {
				t.Errorf("rules %q, want %q", got, tt.want)
			}
			if n := tt.c.NumRules(); n != len(tt.c.RuleList()) {
				t.Errorf("NumRules() = %d, want %d", n, len(tt.c.RuleList()))
			}
		})
	}
	// The actions point into the target: nothing is copied.
	e := &EndpointTarget{DNAT: d, Update: AffinityUpdate{Set: "aff"}}
	rules := e.AppendRules(nil)
	if rules[1].Action != &e.Update || rules[2].Action != &e.DNAT {
		t.Errorf("actions do not point into the target")
	}
}

// TestDescribe checks a compact endpoint chain's derived comment, and that
// a Comment, when set, wins.
func TestDescribe(t *testing.T) {
	for _, tt := range []struct {
		c    Chain
		want string
	}{
		{Chain{Service: "ns/svc:http", Endpoint: &EndpointTarget{DNAT: DNAT{Addr: a("10.0.0.1"), Port: 80}}}, "ns/svc:http -> 10.0.0.1:80"},
		{Chain{Service: "ns/svc", Endpoint: &EndpointTarget{DNAT: DNAT{Addr: a("2001:db8::1"), Port: 53}}}, "ns/svc -> [2001:db8::1]:53"},
		{Chain{Service: "ns/svc", Comment: "given", Endpoint: &EndpointTarget{DNAT: DNAT{Addr: a("10.0.0.1"), Port: 80}}}, "given"},
		{Chain{Service: "ns/svc", Comment: "plain"}, "plain"},
		{Chain{Service: "ns/svc"}, ""},
	} {
		if got := tt.c.Describe(); got != tt.want {
			t.Errorf("Describe() = %q, want %q", got, tt.want)
		}
	}
}
