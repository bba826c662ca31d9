package golden

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kpc/compiler"
	"kpc/compiler/ir"
	"kpc/compiler/load"
	"kpc/render"
)

// FuzzPipeline feeds arbitrary bytes through the whole pipeline (load,
// validate, compile, render nft and iptables; for input that does not
// validate, the checks across its valid documents). It must never panic, and
// every nft ruleset rendered from input that validates must be accepted by
// the kernel: "nft -c -f" runs in a network namespace made for the fuzz run
// (when root and nft are available; under CI they must be).
func FuzzPipeline(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/*/input.yaml")
	for _, d := range dirs {
		data, err := os.ReadFile(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	check := nftChecker(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		input, diags := load.Load([]string{"-"}, bytes.NewReader(data), load.Options{KubeProxy: true}) // as kpc compile reads it
		if diags.Err() != nil {
			load.CrossCheck(input)
			_, cdiags := compiler.Compile(input, compiler.Options{SkipServices: true, SkipSelfCheck: true, SkipRulesetBodies: true})
			if err := cdiags.Err(); err != nil && strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%v\ninput:\n%s", err, data)
			}
			return
		}
		prog, cdiags := compiler.Compile(input, compiler.Options{})
		if err := cdiags.Err(); err != nil {
			// Compile always returns a Program; with errors it is not
			// rendered. An error must be about the input, never the IR.
			if strings.Contains(err.Error(), "internal error") {
				t.Fatalf("%v\ninput:\n%s", err, data)
			}
			return
		}
		if err := prog.Validate(); err != nil {
			t.Fatalf("compiled program is invalid: %v\ninput:\n%s", err, data)
		}
		var nft bytes.Buffer
		if err := (render.NFT{}).Render(&nft, prog); err != nil {
			t.Fatalf("render nft: %v\ninput:\n%s", err, data)
		}
		for _, fam := range []ir.Family{ir.IPv4, ir.IPv6} {
			var ipt bytes.Buffer
			if err := (render.IPTables{Family: fam}).Render(&ipt, prog); err != nil {
				t.Fatalf("render iptables %v: %v\ninput:\n%s", fam, err, data)
			}
		}
		if check != nil {
			if err := check(nft.Bytes()); err != nil {
				t.Fatalf("the kernel refuses the ruleset: %v\ninput:\n%s\nruleset:\n%s", err, data, nft.Bytes())
			}
		}
	})
}

// nftChecker returns a function that runs "nft -c -f -" in a private
// network namespace, or nil when that is impossible outside CI.
func nftChecker(f *testing.F) func([]byte) error {
	if os.Geteuid() != 0 || exec.Command("nft", "--version").Run() != nil {
		if os.Getenv("CI") != "" {
			f.Fatal("FuzzPipeline needs root and nft under CI")
		}
		f.Log("not root or no nft: rendered rulesets are not checked by the kernel")
		return nil
	}
	ns := fmt.Sprintf("kpc-fuzz-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		f.Fatalf("ip netns add: %v: %s", err, out)
	}
	f.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	return func(ruleset []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-c", "-f", "-")
		cmd.Stdin = bytes.NewReader(ruleset)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
}
