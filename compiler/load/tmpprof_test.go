package load

import (
	"os"
	"testing"
)

func TestTmpProf(t *testing.T) {
	f := os.Getenv("KPC_PROF_FILE")
	if f == "" {
		t.Skip()
	}
	_, diags := Load([]string{f}, nil, Options{})
	if len(diags.Errors()) > 0 {
		t.Fatal(diags.Error())
	}
}
