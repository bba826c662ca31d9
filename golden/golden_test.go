package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"kpc/compiler"
	"kpc/compiler/diag"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/render"
)

var update = flag.Bool("update", false, "rewrite the want files of every golden case")

// goldenCase is one directory under testdata.
type goldenCase struct {
	name string
	dir  string
}

func cases(t *testing.T) []goldenCase {
	t.Helper()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var out []goldenCase
	for _, e := range entries {
		// testdata/fuzz holds FuzzPipeline's regression inputs, not a case.
		if e.IsDir() && e.Name() != "fuzz" {
			out = append(out, goldenCase{name: e.Name(), dir: filepath.Join("testdata", e.Name())})
		}
	}
	if len(out) == 0 {
		t.Fatal("no golden cases under testdata")
	}
	return out
}

// result is everything kpc produces for a case.
type result struct {
	prog  *ir.Program
	err   string            // want.err contents, when the input is invalid
	files map[string][]byte // want.* name -> contents
}

// compileCase runs load, validation, compile and every renderer.
func compileCase(t *testing.T, c goldenCase) result {
	t.Helper()
	input, diags := load.Load([]string{filepath.Join(c.dir, "input.yaml")}, nil, load.Options{KubeProxy: true}) // as kpc compile reads it
	var prog *ir.Program
	if diags.Err() == nil {
		var cd diag.List
		prog, cd = compiler.Compile(input, compiler.Options{})
		diags = append(diags, load.Refine(cd)...)
	}
	diags.Sort()
	if errs := diags.Errors(); len(errs) > 0 {
		return result{err: strings.ReplaceAll(errs.Error(), c.dir+string(filepath.Separator), "") + "\n"}
	}
	files := map[string][]byte{}
	var b bytes.Buffer
	if err := ir.Dump(&b, prog); err != nil {
		t.Fatalf("ir.Dump: %v", err)
	}
	files["want.ir"] = b.Bytes()
	renderers := map[string]render.Renderer{
		"want.nft":       render.NFT{},
		"want.iptables":  render.IPTables{Family: ir.IPv4},
		"want.ip6tables": render.IPTables{Family: ir.IPv6},
	}
	for name, r := range renderers {
		// As kpc compile does, iptables output is made for the families
		// that hold a Service: a family's table kept only for its service
		// CIDRs does nothing in iptables.
		if name == "want.ip6tables" && !servesFamily(prog, ir.IPv6) {
			continue
		}
		if name == "want.iptables" && !servesFamily(prog, ir.IPv4) && servesFamily(prog, ir.IPv6) {
			continue
		}
		var b bytes.Buffer
		if err := r.Render(&b, prog); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		files[name] = b.Bytes()
	}
	return result{prog: prog, files: files}
}

// servesFamily reports whether p has a Ruleset of family f that holds a
// Service.
func servesFamily(p *ir.Program, f ir.Family) bool {
	return slices.ContainsFunc(p.Rulesets, func(rs *ir.Ruleset) bool { return rs.Family == f && rs.HoldsServices() })
}

// TestGolden compares every case's outputs with its want files.
func TestGolden(t *testing.T) {
	for _, c := range cases(t) {
		t.Run(c.name, func(t *testing.T) {
			res := compileCase(t, c)
			got := res.files
			if res.err != "" {
				got = map[string][]byte{"want.err": []byte(res.err)}
			}
			entries, err := os.ReadDir(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				name := e.Name()
				if !strings.HasPrefix(name, "want.") {
					continue
				}
				if _, ok := got[name]; !ok {
					if *update {
						if err := os.Remove(filepath.Join(c.dir, name)); err != nil {
							t.Fatal(err)
						}
						continue
					}
					t.Errorf("%s: orphaned want file (kpc produces no such output for this case)", name)
				}
			}
			names := make([]string, 0, len(got))
			for name := range got {
				names = append(names, name)
			}
			slices.Sort(names)
			for _, name := range names {
				path := filepath.Join(c.dir, name)
				if *update {
					if err := os.WriteFile(path, got[name], 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Errorf("%s: missing want file (run go test ./golden -update)", name)
					continue
				}
				if d := cmp.Diff(string(want), string(got[name])); d != "" {
					t.Errorf("%s mismatch (-want +got):\n%s", name, d)
				}
			}
			if res.err != "" {
				if _, err := os.Stat(filepath.Join(c.dir, "flows.yaml")); err == nil {
					t.Errorf("flows.yaml given for an invalid input")
				}
			} else if _, err := os.Stat(filepath.Join(c.dir, "flows.yaml")); err != nil {
				t.Errorf("flows.yaml missing: every valid case states the fate of its packets")
			}
		})
	}
}

// TestTraceFlows checks every case's flows with the IR tracer, in
// nftables and iptables mode.
func TestTraceFlows(t *testing.T) {
	total := 0
	for _, c := range cases(t) {
		flows := readFlows(t, c)
		if flows == nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			res := compileCase(t, c)
			if res.prog == nil {
				t.Fatalf("flows.yaml given but the input is invalid: %s", res.err)
			}
			nodeIPs := NodeIPs(res.prog)
			epAddrs := EndpointAddrs(res.prog)
			for _, f := range flows {
				pkt, err := f.Resolve(nodeIPs)
				if err != nil {
					t.Fatal(err)
				}
				pkt.Arrive(epAddrs)
				for _, mode := range []ir.Mode{ir.ModeNFT, ir.ModeIPTables} {
					got := ir.Trace(res.prog, pkt.Packet, mode)
					if d := CheckTrace(f.For(mode), got); len(d) > 0 {
						t.Errorf("flow %q (%s): %s\n  path: %v", f.Name, modeName(mode), strings.Join(d, "; "), got.Path)
					}
					total++
				}
			}
		})
	}
	t.Logf("tracer: %d flow checks", total)
}

func modeName(m ir.Mode) string {
	if m == ir.ModeIPTables {
		return "iptables"
	}
	return "nft"
}

// readFlows returns a case's flows, or nil when it has none.
func readFlows(t *testing.T, c goldenCase) []Flow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "flows.yaml"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	flows, err := ParseFlows(data)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	return flows
}
