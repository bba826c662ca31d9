package irdiff

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes the report for a reviewer: the Services, Traffic,
// Rulesets and ruleset-line sections, each only when it has content.
// Nothing is written for an equal report.
func (r *Report) WriteText(w io.Writer) error {
	if r.Equal {
		return nil
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "--- %s\n+++ %s\n", r.Old, r.New)
	if len(r.Services) > 0 {
		fmt.Fprintln(bw, "Services:")
		for _, s := range r.Services {
			switch s.Change {
			case Added:
				fmt.Fprintf(bw, "  + %s: %s\n", s.Service, s.Summary)
			case Removed:
				fmt.Fprintf(bw, "  - %s: %s\n", s.Service, s.Summary)
			default:
				fmt.Fprintf(bw, "  ~ %s:\n", s.Service)
				writeChanges(bw, s.Changes)
			}
		}
	}
	if len(r.Traffic) > 0 {
		fmt.Fprintf(bw, "Traffic (%s semantics):\n", r.Format)
		for _, t := range r.Traffic {
			dst := t.Destination
			if t.Service != "" {
				dst += " (" + t.Service + ")"
			}
			fmt.Fprintf(bw, "  %s: %s\n", dst, t.Text)
		}
	}
	if len(r.Rulesets) > 0 {
		fmt.Fprintln(bw, "Rulesets (the IR's chains, as kpc compile --format ir prints them):")
		for _, rs := range r.Rulesets {
			switch rs.Change {
			case Added:
				fmt.Fprintf(bw, "  + %s ruleset: %s\n", rs.Family, rs.Changes[0].New)
			case Removed:
				fmt.Fprintf(bw, "  - %s ruleset: %s\n", rs.Family, rs.Changes[0].Old)
			default:
				fmt.Fprintf(bw, "  ~ %s:\n", rs.Family)
				writeChanges(bw, rs.Changes)
			}
		}
	}
	for _, f := range r.Lines {
		fmt.Fprintf(bw, "Ruleset lines (%s):\n", f.Name)
		for _, h := range f.Hunks {
			fmt.Fprintf(bw, "@@ -%d,%d +%d,%d @@\n", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
			for _, l := range h.Lines {
				fmt.Fprintln(bw, l)
			}
		}
	}
	return bw.Flush()
}

// writeChanges writes one line per change; consecutive field changes of
// one subject share a line ("endpoint X: ready true -> false, terminating
// false -> true").
func writeChanges(w io.Writer, changes []Change) {
	for i := 0; i < len(changes); {
		c := changes[i]
		j := i + 1
		if c.Subject != "" && c.Field != "" && c.Field != "rules" {
			parts := []string{fieldText(c)}
			for ; j < len(changes) && changes[j].Subject == c.Subject && changes[j].Field != "" && changes[j].Field != "rules"; j++ {
				parts = append(parts, fieldText(changes[j]))
			}
			fmt.Fprintf(w, "      %s: %s\n", c.Subject, strings.Join(parts, ", "))
		} else {
			fmt.Fprintf(w, "      %s\n", changeText(c))
		}
		i = j
	}
}

// fieldText spells a field change without its subject.
func fieldText(c Change) string {
	switch c.Change {
	case Added:
		return c.Field + " added: " + c.New
	case Removed:
		return c.Field + " removed: " + c.Old
	}
	return c.Field + " " + c.Old + " -> " + c.New
}

// changeText spells one Change on a line.
func changeText(c Change) string {
	subject := c.Subject
	if c.Field == "" {
		switch c.Change {
		case Added:
			return "+ " + subject + ": " + c.New
		case Removed:
			return "- " + subject + ": " + c.Old
		}
		return subject + ": " + c.Old + " -> " + c.New
	}
	prefix := c.Field
	if subject != "" {
		prefix = subject + ": " + c.Field
	}
	if c.Field == "rules" && c.Change == Changed {
		return fmt.Sprintf("%s changed (%d -> %s)", prefix, countRules(c.Old), plural(countRules(c.New), "rule"))
	}
	switch c.Change {
	case Added:
		return prefix + " added: " + c.New
	case Removed:
		return prefix + " removed: " + c.Old
	}
	return prefix + ": " + c.Old + " -> " + c.New
}

func countRules(s string) int {
	if s == "" {
		return 0
	}
	return strings.Count(s, ruleSep) + 1
}

// WriteJSON writes the report as indented JSON (schema in the package
// documentation).
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encoding the diff report: %w", err)
	}
	return nil
}
