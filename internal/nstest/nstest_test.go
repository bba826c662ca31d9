package nstest

import "testing"

func TestSortElements(t *testing.T) {
	tests := []struct{ in, want string }{
		{"\t\ttypeof numgen random mod 1 : verdict\n", "\t\ttypeof numgen random mod 1 : verdict\n"},
		{"\t\ttype ipv4_addr\n", "\t\ttype ipv4_addr\n"},
		{"set s {\n\t\telements = { b . 1 comment \"x, }\" : goto c,\n\t\t\t     a . 2 : drop }\n\t}\n",
			"set s {\n\t\telements = { a . 2 : drop, b . 1 comment \"x, }\" : goto c }\n\t}\n"},
		{"elements = { 2, 1,\n 2 }", "elements = { 1, 2 }"},
		{"elements = { 1, 2", "elements = { 1, 2"},
	}
	for _, tt := range tests {
		if got := SortElements(tt.in); got != tt.want {
			t.Errorf("SortElements(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExec(t *testing.T) {
	if out, err := Exec("", "hello", "cat"); err != nil || out != "hello" {
		t.Errorf("Exec cat = %q, %v", out, err)
	}
	if _, err := Exec("", "", "false"); err == nil {
		t.Error("Exec false: no error")
	}
}
