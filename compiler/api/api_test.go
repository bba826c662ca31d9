package api

import (
	"encoding/json"
	"testing"
)

func TestIntOrString(t *testing.T) {
	tests := []struct {
		in      string
		want    IntOrString
		wantErr bool
	}{
		{in: `8080`, want: IntOrString{IntVal: 8080}},
		{in: `"http"`, want: IntOrString{IsString: true, StrVal: "http"}},
		{in: `"8080"`, want: IntOrString{IsString: true, StrVal: "8080"}},
		{in: `1.5`, wantErr: true},
		{in: `4294967296`, wantErr: true},
		{in: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		var got IntOrString
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.in, got, tt.want)
		}
		out, err := json.Marshal(got)
		if err != nil || string(out) != tt.in {
			t.Errorf("%s: round trip gave %s (%v)", tt.in, out, err)
		}
	}
}
