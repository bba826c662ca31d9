package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// steps is how long the steps of one command took, in order (--timings).
type steps []step

// step is one step of a command and how long it took.
type step struct {
	what string
	took time.Duration
}

// add appends the step what, which began at start and has just ended. A
// nil s records nothing.
func (s *steps) add(what string, start time.Time) {
	if s != nil {
		*s = append(*s, step{what, time.Since(start)})
	}
}

// report writes the steps of command cmd to w on one line.
func (s steps) report(w io.Writer, cmd string) {
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = fmt.Sprintf("%s %s", formatDuration(st.took), st.what)
	}
	fmt.Fprintf(w, "kpc %s: took %s\n", cmd, strings.Join(parts, ", "))
}

// formatDuration spells a duration in seconds with two decimals from one
// second up, in whole milliseconds below.
func formatDuration(d time.Duration) string {
	switch ms := d.Round(time.Millisecond).Milliseconds(); {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case ms == 0 && d > 0:
		return "under 1 ms"
	default:
		return fmt.Sprintf("%d ms", ms)
	}
}
