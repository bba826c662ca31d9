package gcpolicy

import (
	"os"
	"runtime/debug"
	"testing"
)

// TestApply checks that Apply sets GOGC's percentage unless GOGC is set.
// GOMEMLIMIT is set throughout, so that the soft limit is left alone.
func TestApply(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "off")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tests := []struct {
		name string
		gogc string // "" = unset
		want int
	}{
		{"GOGC unset", "", Percent},
		{"GOGC set", "100", 123},
	}
	for _, tt := range tests {
		t.Setenv("GOGC", tt.gogc)
		if tt.gogc == "" {
			os.Unsetenv("GOGC")
		}
		debug.SetGCPercent(123)
		Apply()
		if got := debug.SetGCPercent(100); got != tt.want {
			t.Errorf("%s: GC percentage %d, want %d", tt.name, got, tt.want)
		}
	}
}
