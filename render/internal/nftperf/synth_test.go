package nftperf

import (
	"reflect"
	"testing"
)

func TestGenerate(t *testing.T) {
	for _, o := range []Options{Mixed, {}} {
		p := Generate(200, o)
		if err := p.Validate(); err != nil {
			t.Fatalf("Generate(200, %+v) is invalid: %v", o, err)
		}
		if !reflect.DeepEqual(p, Generate(200, o)) {
			t.Errorf("Generate(200, %+v) is not deterministic", o)
		}
	}
	if n := len(Generate(200, Options{}).Rulesets[0].Chains); n != 200*(Endpoints+1) {
		t.Errorf("plain: %d chains, want %d", n, 200*(Endpoints+1))
	}
}
