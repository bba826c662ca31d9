//go:build !linux

package main

import (
	"errors"
	"io"

	"kpc/compiler"
	"kpc/compiler/ir"
)

var errNoNetlink = errors.New("the netlink backend needs Linux")

func netlinkProbe(applyOptions) error                                  { return errNoNetlink }
func netlinkApply(*ir.Program, applyOptions, io.Writer) (steps, error) { return nil, errNoNetlink }
func netlinkDelete(*ir.Program, applyOptions, io.Writer) error         { return errNoNetlink }

func liveDrift(*ir.Program, string) ([]string, error) { return nil, errNoNetlink }

// writeSysctl is not available outside Linux.
func writeSysctl(string, string, string) error { return errors.New("sysctls need Linux") }

func watchApply([]string, *inputFlags, compiler.Options, applyOptions, io.Writer, io.Writer) error {
	return errNoNetlink
}
