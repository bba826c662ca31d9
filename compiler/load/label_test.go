package load

import (
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/token"
)

// TestLabelName checks that labelName's shortcut gives what ast.LabelName
// gives.
func TestLabelName(t *testing.T) {
	labels := []ast.Label{
		ast.NewIdent("apiVersion"),
		ast.NewIdent("a"),
		ast.NewIdent("x1_$"),
		ast.NewIdent("_"),
		ast.NewIdent("_x"),
		ast.NewIdent("#Def"),
		ast.NewIdent("_#Def"),
		ast.NewIdent("1x"),
		ast.NewIdent("a-b"),
		ast.NewIdent("ключ"),
		ast.NewIdent(""),
		ast.NewString("app.kubernetes.io/name"),
		ast.NewString("plain"),
		&ast.BasicLit{Kind: token.INT, Value: "1"},
		&ast.BasicLit{Kind: token.TRUE, Value: "true"},
	}
	for _, l := range labels {
		wantName, wantIdent, wantErr := ast.LabelName(l)
		name, isIdent, err := labelName(l)
		if name != wantName || isIdent != wantIdent || (err == nil) != (wantErr == nil) {
			t.Errorf("labelName(%#v) = %q, %v, %v; ast.LabelName gives %q, %v, %v", l, name, isIdent, err, wantName, wantIdent, wantErr)
		}
	}
	for _, s := range []string{"a", "Z9", "a_$", "x-y", "9a", "_a", "#a", "é", ""} {
		if plainIdent(s) && !ast.IsValidIdent(s) {
			t.Errorf("plainIdent(%q) is true, ast.IsValidIdent false", s)
		}
	}
}
