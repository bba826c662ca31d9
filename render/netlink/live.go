//go:build linux

package netlink

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"kpc/compiler/ir"
)

// Drift is what differs between kpc's tables in the kernel and the tables
// Apply would create for a Program.
//
// It compares, for the IPv4 and IPv6 table of kpc's name: whether the
// table exists; the chains by name, with their type, hook, priority and
// policy, and their rules in order (every expression as google/nftables
// decodes it, and the rule comment), anonymous sets by their elements;
// the named sets and maps by name, with their key and data types and
// lengths, flags (map, interval, timeout, dynamic, constant), timeout and
// comment, and their elements (key, data or verdict, comment) as a set,
// except the elements of dynamic sets, which traffic fills (affinity).
// It does not compare what neither the packet path nor kpc depends on:
// handles, the order of chains, sets and elements, set IDs, set sizes,
// the concatenation flag and the typeof declarations of set userdata
// (which differ between a table loaded with nft -f and one applied over
// netlink), and counters.
type Drift struct {
	// Lines describe the differences, sorted by object, as a unified diff
	// from the kernel (the old side) to what Apply would install (the new
	// side): "- " starts what only the kernel holds (Apply would delete
	// it), "+ " what only Apply would install (the kernel lacks it), "~ "
	// an object that exists on both sides but differs. The details of a
	// "~" object follow, indented: its "- " and "+ " elements (on the same
	// terms, the kernel's first), and its declaration or rules as
	// "kernel:" and "kpc:" pairs.
	Lines []string
}

// Equal reports whether there is no difference.
func (d *Drift) Equal() bool { return len(d.Lines) == 0 }

// String returns the lines, each ending in a newline.
func (d *Drift) String() string {
	var b strings.Builder
	for _, l := range d.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// model is the comparable form of one table.
type model struct {
	present bool
	chains  map[string]*chainModel
	sets    map[string]*setModel
}

type chainModel struct {
	head  string
	rules []string
}

type setModel struct {
	head    string
	dynamic bool
	elems   []string // sorted
}

// Compare reads kpc's tables back from the kernel (in o.NetNS) and
// compares them with the batch Build(p, o) makes (see Drift).
func Compare(p *ir.Program, o Options) (*Drift, error) {
	b, err := Build(p, o)
	if err != nil {
		return nil, err
	}
	d, err := newDumper(o)
	if err != nil {
		return nil, err
	}
	defer d.close()
	c, err := dial(o)
	if err != nil {
		return nil, err
	}
	defer c.close()
	drift := &Drift{}
	for _, t := range b.tables {
		want := expectedModel(t)
		got, err := liveModel(c, d, t.table)
		if err != nil {
			return nil, err
		}
		drift.Lines = append(drift.Lines, compareModels(tableLabel(t.table), want, got)...)
	}
	return drift, nil
}

func tableLabel(t *nftables.Table) string {
	if t.Family == nftables.TableFamilyIPv6 {
		return "ip6 " + t.Name
	}
	return "ip " + t.Name
}

// compareModels lists the differences of one table, from got (the
// kernel's) to want (what Apply would install); see Drift for the signs.
func compareModels(label string, want, got *model) []string {
	switch {
	case !want.present && !got.present:
		return nil
	case !got.present:
		return []string{fmt.Sprintf("+ table %s (not in the kernel)", label)}
	case !want.present:
		return []string{fmt.Sprintf("- table %s (kpc would delete it)", label)}
	}
	var out []string
	for _, name := range unionKeys(want.chains, got.chains) {
		w, g := want.chains[name], got.chains[name]
		switch {
		case g == nil:
			out = append(out, fmt.Sprintf("+ %s chain %s (%d rules)", label, name, len(w.rules)))
		case w == nil:
			out = append(out, fmt.Sprintf("- %s chain %s (%d rules)", label, name, len(g.rules)))
		default:
			var det []string
			if w.head != g.head {
				det = append(det, "    kernel: "+g.head, "    kpc:    "+w.head)
			}
			for i := 0; i < max(len(w.rules), len(g.rules)); i++ {
				wr, gr := "(none)", "(none)"
				if i < len(w.rules) {
					wr = w.rules[i]
				}
				if i < len(g.rules) {
					gr = g.rules[i]
				}
				if wr != gr {
					det = append(det, fmt.Sprintf("    rule %d kernel: %s", i+1, gr), fmt.Sprintf("    rule %d kpc:    %s", i+1, wr))
				}
			}
			if len(det) > 0 {
				out = append(out, fmt.Sprintf("~ %s chain %s", label, name))
				out = append(out, det...)
			}
		}
	}
	for _, name := range unionKeys(want.sets, got.sets) {
		w, g := want.sets[name], got.sets[name]
		switch {
		case g == nil:
			out = append(out, fmt.Sprintf("+ %s set %s (%d elements)", label, name, len(w.elems)))
		case w == nil:
			out = append(out, fmt.Sprintf("- %s set %s (%d elements)", label, name, len(g.elems)))
		default:
			var det []string
			if w.head != g.head {
				det = append(det, "    kernel: "+g.head, "    kpc:    "+w.head)
			}
			if !w.dynamic {
				lack, extra := setDiff(w.elems, g.elems)
				for _, e := range extra {
					det = append(det, "    - element "+e)
				}
				for _, e := range lack {
					det = append(det, "    + element "+e)
				}
			}
			if len(det) > 0 {
				out = append(out, fmt.Sprintf("~ %s set %s", label, name))
				out = append(out, det...)
			}
		}
	}
	return out
}

func unionKeys[V any](a, b map[string]V) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// setDiff returns the elements of sorted want missing from sorted got,
// and those of got missing from want.
func setDiff(want, got []string) (lack, extra []string) {
	count := map[string]int{}
	for _, e := range want {
		count[e]++
	}
	for _, e := range got {
		count[e]--
	}
	for _, e := range want {
		if count[e] > 0 {
			lack = append(lack, e)
			count[e]--
		}
	}
	for _, e := range got {
		if count[e] < 0 {
			extra = append(extra, e)
			count[e]++
		}
	}
	return lack, extra
}

// comparedSetFlags are the set flags Drift compares.
const comparedSetFlags = unix.NFT_SET_MAP | unix.NFT_SET_INTERVAL | unix.NFT_SET_TIMEOUT | unix.NFT_SET_EVAL |
	unix.NFT_SET_CONSTANT | unix.NFT_SET_ANONYMOUS

// verdictDataType is the data type the kernel reports for a verdict map.
const verdictDataType = 0xffffff00

func setHead(flags, keyType, keyLen, dataType, dataLen uint32, timeout string, size uint32, comment string) string {
	flags &= comparedSetFlags
	var fs []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{unix.NFT_SET_MAP, "map"}, {unix.NFT_SET_INTERVAL, "interval"}, {unix.NFT_SET_TIMEOUT, "timeout"},
		{unix.NFT_SET_EVAL, "dynamic"}, {unix.NFT_SET_CONSTANT, "constant"}, {unix.NFT_SET_ANONYMOUS, "anonymous"}} {
		if flags&f.bit != 0 {
			fs = append(fs, f.name)
		}
	}
	s := fmt.Sprintf("type %s (%d bytes)", typeName(keyType), keyLen)
	switch {
	case flags&unix.NFT_SET_MAP == 0:
	case dataType == verdictDataType:
		// The kernel reports the size of its verdict structure.
		s += " : verdict"
	default:
		s += fmt.Sprintf(" : %s (%d bytes)", typeName(dataType), dataLen)
	}
	if len(fs) > 0 {
		s += " flags " + strings.Join(fs, ",")
	}
	if timeout != "" {
		s += " timeout " + timeout
	}
	// The size of a set the kernel fills is its own: it gives one with
	// none the default of 65535 when a rule binds it.
	if size != 0 && flags&unix.NFT_SET_EVAL == 0 {
		s += fmt.Sprintf(" size %d", size)
	}
	if comment != "" {
		s += fmt.Sprintf(" comment %q", comment)
	}
	return s
}

// Datatype numbers of nft (include/datatype.h) that kpc's sets use.
var typeNames = map[uint32]string{4: "integer", 7: "ipv4_addr", 8: "ipv6_addr", 12: "inet_proto", 13: "inet_service"}

// typeFields splits a (possibly concatenated) datatype number into its
// fields' names; ok is false when one is unknown.
func typeFields(t uint32) ([]string, bool) {
	if t == verdictDataType {
		return []string{"verdict"}, true
	}
	var out []string
	for t != 0 {
		n, ok := typeNames[t&nftables.SetConcatTypeMask]
		if !ok {
			return nil, false
		}
		out = append([]string{n}, out...)
		t >>= nftables.SetConcatTypeBits
	}
	return out, len(out) > 0
}

func typeName(t uint32) string {
	if f, ok := typeFields(t); ok {
		return strings.Join(f, " . ")
	}
	return fmt.Sprintf("%#x", t)
}

// formatValue spells a key or data value of datatype t: addresses,
// protocols and ports, and integers (kpc's are host-endian numgen keys);
// anything else, or a value that does not fit the type, in hex.
func formatValue(t uint32, b []byte) string {
	fields, ok := typeFields(t)
	if !ok {
		return "0x" + hex.EncodeToString(b)
	}
	concat := len(fields) > 1
	rest := b
	var parts []string
	for _, f := range fields {
		size := map[string]int{"integer": 4, "ipv4_addr": 4, "ipv6_addr": 16, "inet_proto": 1, "inet_service": 2}[f]
		span := size
		if concat {
			span = (size + 3) &^ 3
		}
		if size == 0 || len(rest) < span {
			return "0x" + hex.EncodeToString(b)
		}
		v := rest[:size]
		switch f {
		case "integer":
			parts = append(parts, fmt.Sprint(binary.NativeEndian.Uint32(v)))
		case "ipv4_addr", "ipv6_addr":
			a, _ := netip.AddrFromSlice(v)
			parts = append(parts, a.String())
		case "inet_proto":
			parts = append(parts, protoName(v[0]))
		case "inet_service":
			parts = append(parts, fmt.Sprint(binary.BigEndian.Uint16(v)))
		}
		rest = rest[span:]
	}
	if len(rest) != 0 {
		return "0x" + hex.EncodeToString(b)
	}
	return strings.Join(parts, " . ")
}

func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return fmt.Sprint(p)
}

func verdictString(code int64, chain string) string {
	switch expr.VerdictKind(code) {
	case expr.VerdictGoto:
		return "goto " + chain
	case expr.VerdictJump:
		return "jump " + chain
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictReturn:
		return "return"
	}
	return fmt.Sprintf("verdict %d %s", code, chain)
}

// elemString is the comparable form of an element.
func elemString(keyType, dataType uint32, key, data []byte, verdict string, intervalEnd bool, comment string) string {
	s := formatValue(keyType, key)
	if intervalEnd {
		s += " (interval end)"
	}
	if comment != "" {
		s += fmt.Sprintf(" comment %q", comment)
	}
	switch {
	case verdict != "":
		s += " : " + verdict
	case data != nil:
		s += " : " + formatValue(dataType, data)
	}
	return s
}

func magic(t nftables.SetDatatype) uint32 { return t.GetNFTMagic() }

// specFlags are the kernel flags of a set built here.
func specFlags(s *nftables.Set) uint32 {
	var f uint32
	for _, x := range []struct {
		on  bool
		bit uint32
	}{{s.IsMap, unix.NFT_SET_MAP}, {s.Interval, unix.NFT_SET_INTERVAL}, {s.HasTimeout, unix.NFT_SET_TIMEOUT},
		{s.Dynamic, unix.NFT_SET_EVAL}, {s.Constant, unix.NFT_SET_CONSTANT}, {s.Anonymous, unix.NFT_SET_ANONYMOUS}} {
		if x.on {
			f |= x.bit
		}
	}
	return f
}

func timeoutString(flags uint32, ms int64) string {
	if flags&unix.NFT_SET_TIMEOUT == 0 || ms == 0 {
		return ""
	}
	return fmt.Sprintf("%dms", ms)
}

// specDataType is the data type the kernel reports for a set built here.
func specDataType(set *nftables.Set) uint32 {
	if set.IsMap && set.DataType.Name == nftables.TypeVerdict.Name {
		return verdictDataType
	}
	return magic(set.DataType)
}

// specHead is the comparable declaration of a set built here.
func specHead(set *nftables.Set) string {
	flags := specFlags(set)
	return setHead(flags, magic(set.KeyType), set.KeyType.Bytes, specDataType(set), set.DataType.Bytes,
		timeoutString(flags, set.Timeout.Milliseconds()), set.Size, set.Comment)
}

// specModel is the comparable form of a set built here.
func specModel(s *setSpec) *setModel {
	set := s.set
	dataType := specDataType(set)
	m := &setModel{head: specHead(set), dynamic: set.Dynamic}
	for _, e := range s.elems {
		v := ""
		if e.VerdictData != nil {
			v = verdictString(int64(e.VerdictData.Kind), e.VerdictData.Chain)
		}
		var data []byte
		if len(e.Val) > 0 {
			data = e.Val
		}
		m.elems = append(m.elems, elemString(magic(set.KeyType), dataType, e.Key, data, v, e.IntervalEnd, e.Comment))
	}
	sort.Strings(m.elems)
	return m
}

// dumpedHead is the comparable declaration of a set read from the kernel.
func dumpedHead(s *dumpedSet) string {
	return setHead(s.flags, s.keyType, s.keyLen, s.dataType, s.dataLen, timeoutString(s.flags, s.timeout.Milliseconds()), s.size, s.comment)
}

// dumpedModel is the comparable form of a set read from the kernel.
func dumpedModel(s *dumpedSet) *setModel {
	m := &setModel{head: dumpedHead(s), dynamic: s.flags&unix.NFT_SET_EVAL != 0}
	for _, e := range s.elems {
		v := ""
		if e.hasVerdict {
			v = verdictString(int64(e.verdictCode), e.verdictTo)
		}
		m.elems = append(m.elems, elemString(s.keyType, s.dataType, e.key, e.data, v, e.intervalEnd, e.comment))
	}
	sort.Strings(m.elems)
	return m
}

func chainHead(c *nftables.Chain) string {
	if c.Hooknum == nil {
		return "regular chain"
	}
	s := fmt.Sprintf("type %s hook %d", c.Type, *c.Hooknum)
	if c.Priority != nil {
		s += fmt.Sprintf(" priority %d", *c.Priority)
	}
	if c.Policy != nil {
		s += fmt.Sprintf(" policy %d", *c.Policy)
	}
	return s
}

// exprString is the comparable form of one expression. Set references
// are by name, an anonymous set's by its elements (anon spells them);
// fields the kernel fills in on its own (set IDs, NAT maximum registers)
// are left out.
func exprString(e expr.Any, anon func(name string, id uint32) (string, bool)) string {
	switch x := e.(type) {
	case *expr.Lookup:
		set := x.SetName
		if s, ok := anon(x.SetName, x.SetID); ok {
			set = s
		}
		dreg := ""
		if x.IsDestRegSet {
			dreg = fmt.Sprintf(" dreg %d", x.DestRegister)
		}
		return fmt.Sprintf("lookup reg %d set %s%s invert %v", x.SourceRegister, set, dreg, x.Invert)
	case *expr.Dynset:
		return fmt.Sprintf("dynset op %d reg %d data %d set %s timeout %v invert %v exprs %d", x.Operation, x.SrcRegKey,
			x.SrcRegData, x.SetName, x.Timeout, x.Invert, len(x.Exprs))
	case *expr.NAT:
		n := *x
		if n.RegAddrMax == 0 {
			n.RegAddrMax = n.RegAddrMin
		}
		if n.RegProtoMax == 0 {
			n.RegProtoMax = n.RegProtoMin
		}
		return fmt.Sprintf("nat %+v", n)
	case *expr.Verdict:
		return verdictString(int64(x.Kind), x.Chain)
	}
	return strings.TrimPrefix(fmt.Sprintf("%T%+v", e, e), "*expr.")
}

func ruleString(exprs []expr.Any, udata []byte, anon func(string, uint32) (string, bool)) string {
	parts := make([]string, len(exprs))
	for i, e := range exprs {
		parts[i] = exprString(e, anon)
	}
	s := strings.Join(parts, "; ")
	if c, ok := userdata.GetString(udata, userdata.TypeComment); ok {
		s += fmt.Sprintf(" comment %q", c)
	}
	return s
}

// expectedModel is the comparable form of a table built here.
func expectedModel(t *tableSpec) *model {
	m := &model{present: t.define, chains: map[string]*chainModel{}, sets: map[string]*setModel{}}
	if !t.define {
		return m
	}
	m.chains = expectedChains(t)
	for _, s := range t.sets {
		m.sets[s.set.Name] = specModel(s)
	}
	return m
}

// expectedChains is the comparable form of the chains of a table built
// here, by name.
func expectedChains(t *tableSpec) map[string]*chainModel {
	chains := make(map[string]*chainModel, len(t.chains))
	for _, c := range t.chains {
		chains[c.Name] = &chainModel{head: chainHead(c)}
	}
	for _, r := range t.rules {
		anon := func(name string, id uint32) (string, bool) {
			for _, a := range r.anon {
				if a.set.ID == id {
					return "{" + strings.Join(specModel(a).elems, ", ") + "}", true
				}
			}
			return "", false
		}
		c := chains[r.rule.Chain.Name]
		c.rules = append(c.rules, ruleString(r.rule.Exprs, r.rule.UserData, anon))
	}
	return chains
}

// liveModel reads table t from the kernel.
func liveModel(c *conn, d *dumper, t *nftables.Table) (*model, error) {
	m := &model{chains: map[string]*chainModel{}, sets: map[string]*setModel{}}
	exists, err := c.tableExists(t)
	if err != nil || !exists {
		return m, err
	}
	m.present = true
	fam := byte(t.Family)
	sets, err := d.sets(fam, t.Name)
	if err != nil {
		return nil, err
	}
	anonSets := map[string]*setModel{}
	for _, s := range sets {
		if s.flags&unix.NFT_SET_EVAL == 0 || s.isAnonymous {
			if err := d.elements(fam, t.Name, s); err != nil {
				return nil, err
			}
		}
		if s.isAnonymous {
			anonSets[s.name] = dumpedModel(s)
			continue
		}
		m.sets[s.name] = dumpedModel(s)
	}
	rc, err := readConn(d)
	if err != nil {
		return nil, err
	}
	chains, err := liveChains(rc, t)
	if err != nil {
		return nil, err
	}
	for _, ch := range chains {
		cm := &chainModel{head: chainHead(ch)}
		if cm.rules, err = liveRules(rc, t, ch, anonSets); err != nil {
			return nil, err
		}
		m.chains[ch.Name] = cm
	}
	return m, nil
}

// liveChains lists the chains of table t in the kernel, through rc (a
// readConn).
func liveChains(rc *nftables.Conn, t *nftables.Table) ([]*nftables.Chain, error) {
	all, err := rc.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, fmt.Errorf("netlink: listing chains: %w", err)
	}
	var chains []*nftables.Chain
	for _, ch := range all {
		if ch.Table != nil && ch.Table.Name == t.Name {
			chains = append(chains, ch)
		}
	}
	return chains, nil
}

// liveRules reads the rules of chain ch of table t in the kernel, in
// comparable form; anonSets holds the anonymous sets of the table, which
// the rules' lookups are spelled with.
func liveRules(rc *nftables.Conn, t *nftables.Table, ch *nftables.Chain, anonSets map[string]*setModel) ([]string, error) {
	anon := func(name string, _ uint32) (string, bool) {
		if s, ok := anonSets[name]; ok {
			return "{" + strings.Join(s.elems, ", ") + "}", true
		}
		return "", false
	}
	rules, err := rc.GetRules(t, ch)
	if err != nil {
		return nil, fmt.Errorf("netlink: listing rules of %s: %w", ch.Name, err)
	}
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		out = append(out, ruleString(r.Exprs, r.UserData, anon))
	}
	return out, nil
}
