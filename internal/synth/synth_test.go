package synth

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	c := Config{Services: 40, Endpoints: 3}
	if err := Write(&a, c); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, c); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Fatal("two writes of the same config differ")
	}
	for _, want := range []string{"kind: Node", "type: NodePort", "type: LoadBalancer", "externalTrafficPolicy: Local", "sessionAffinity: ClientIP", "ipFamilies: [IPv6]", "loadBalancerSourceRanges"} {
		if !strings.Contains(a.String(), want) {
			t.Errorf("mix lacks %q", want)
		}
	}
	if got := strings.Count(a.String(), "kind: Service\n"); got != 40 {
		t.Errorf("%d Services, want 40", got)
	}
}

func TestClusterIPsDistinct(t *testing.T) {
	seen := map[string]int{}
	for i := range 50000 {
		for _, v6 := range []bool{false, true} {
			a := clusterIP(i, v6).String()
			if j, ok := seen[a]; ok {
				t.Fatalf("Services %d and %d share %s", j, i, a)
			}
			seen[a] = i
		}
	}
}
