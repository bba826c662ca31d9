// Package render spells a compiled ir.Program in a kernel tool's text
// format: nft -f scripts (NFT) and iptables-restore input. Renderers are
// pure: they make no system calls, read no clock and no randomness, and
// give the same bytes for the same Program. Every semantic decision was
// made by the compiler; a renderer only chooses the spelling, and returns an
// *UnsupportedError rather than drop an intent it cannot express.
package render

import (
	"fmt"
	"io"

	"kpc/compiler/ir"
)

// Renderer writes a Program in one backend's format.
//
// Render validates the Program before it writes anything, so an invalid
// Program gives an error and no output; an error after writing has started
// comes from w. A nil Program is an error.
type Renderer interface {
	Render(w io.Writer, p *ir.Program) error
}

// UnsupportedError reports an intent of the IR that a backend cannot
// express. Renderers return it instead of silently dropping the intent.
type UnsupportedError struct {
	// Backend names the renderer ("nft", "iptables").
	Backend string
	// Feature describes what could not be spelled.
	Feature string
}

// Error implements error.
func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s backend does not support %s", e.Backend, e.Feature)
}
