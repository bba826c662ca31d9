package render

import (
	"bytes"
	"slices"
	"strings"

	"kpc/compiler/ir"
)

// IPTablesHook is one jump from a built-in chain into kpc's hook chain for
// it, which the apply path keeps at the top of the built-in chain.
type IPTablesHook struct {
	// Table is "filter" or "nat".
	Table string
	// BuiltIn is the built-in chain: INPUT, FORWARD, OUTPUT, PREROUTING or
	// POSTROUTING.
	BuiltIn string
	// Target is kpc's hook chain, e.g. "KPC-HOOK-PREROUTING".
	Target string
}

// CheckArgs returns the iptables arguments that succeed (exit status 0)
// when the jump exists and fail with status 1 when it does not.
func (h IPTablesHook) CheckArgs() []string {
	return []string{"-w", "5", "-t", h.Table, "-C", h.BuiltIn, "-j", h.Target}
}

// InsertArgs returns the iptables arguments that insert the jump as the
// first rule of the built-in chain.
func (h IPTablesHook) InsertArgs() []string {
	return []string{"-w", "5", "-t", h.Table, "-I", h.BuiltIn, "1", "-j", h.Target}
}

// DeleteArgs returns the iptables arguments that delete the jump (they fail
// when it does not exist).
func (h IPTablesHook) DeleteArgs() []string {
	return []string{"-w", "5", "-t", h.Table, "-D", h.BuiltIn, "-j", h.Target}
}

// Hooks returns the jumps from built-in chains that make a loaded file take
// effect, in a fixed order; they depend only on the family and the chain
// prefix of p (nil p: the default prefix). Run them after every load with
// "iptables -C … || iptables -I …" (HookCommands), which gives exactly one
// jump per built-in chain however often it runs. The chains they name
// exist once a file rendered for the same prefix has been loaded.
func (r IPTables) Hooks(p *ir.Program) ([]IPTablesHook, error) {
	if _, err := r.family(); err != nil {
		return nil, err
	}
	prefix, err := iptPrefixOf(p)
	if err != nil {
		return nil, err
	}
	hooks := make([]IPTablesHook, len(iptHookPoints))
	for i, h := range iptHookPoints {
		hooks[i] = IPTablesHook{Table: h.table, BuiltIn: h.builtIn, Target: prefix + "-" + iptHookPrefix + h.builtIn}
	}
	return hooks, nil
}

// HookCommands returns Hooks as POSIX shell lines, each
// "iptables -w 5 -t T -C CHAIN -j HOOK 2>/dev/null || iptables -w 5 -t T -I CHAIN 1 -j HOOK"
// (ip6tables for IPv6). Running them after loading the file is idempotent.
func (r IPTables) HookCommands(p *ir.Program) ([]string, error) {
	hooks, err := r.Hooks(p)
	if err != nil {
		return nil, err
	}
	lines := make([]string, len(hooks))
	for i, h := range hooks {
		lines[i] = h.shell(r.Command())
	}
	return lines, nil
}

// shell spells the hook as one idempotent shell line for the tool cmd.
func (h IPTablesHook) shell(cmd string) string {
	return cmd + " " + strings.Join(h.CheckArgs(), " ") + " 2>/dev/null || " + cmd + " " + strings.Join(h.InsertArgs(), " ")
}

// Prune returns iptables-restore input that deletes the chains with kpc's
// prefix that saved (the output of "iptables-save", any tables) holds but
// the file rendered from p does not declare: the per-Service chains of an
// earlier load. Load it with --noflush after the new file; it flushes each
// stale chain, then deletes it. When nothing is stale it returns an empty
// slice. Errors are Render's.
func (r IPTables) Prune(saved []byte, p *ir.Program) ([]byte, error) {
	var rendered bytes.Buffer
	if err := r.Render(&rendered, p); err != nil {
		return nil, err
	}
	prefix, err := iptPrefixOf(p)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for table, chains := range iptDeclared(rendered.Bytes()) {
		for _, c := range chains {
			keep[table+" "+c] = true
		}
	}
	stale := map[string][]string{}
	var tables []string
	for table, chains := range iptDeclared(saved) {
		for _, c := range chains {
			if strings.HasPrefix(c, prefix+"-") && !keep[table+" "+c] {
				stale[table] = append(stale[table], c)
			}
		}
		if len(stale[table]) > 0 {
			tables = append(tables, table)
		}
	}
	slices.Sort(tables)
	var buf bytes.Buffer
	for _, table := range tables {
		chains := stale[table]
		slices.Sort(chains)
		buf.WriteString("*" + table + "\n")
		for _, c := range chains {
			buf.WriteString(":" + c + " - [0:0]\n")
		}
		for _, c := range chains {
			buf.WriteString("-X " + c + "\n")
		}
		buf.WriteString("COMMIT\n")
	}
	return buf.Bytes(), nil
}

// iptDeclared returns the chains declared (":NAME …" lines) per table in
// iptables-save or iptables-restore text.
func iptDeclared(text []byte) map[string][]string {
	out := map[string][]string{}
	table := ""
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":") && table != "":
			if name, _, _ := strings.Cut(line[1:], " "); name != "" {
				out[table] = append(out[table], name)
			}
		}
	}
	return out
}
