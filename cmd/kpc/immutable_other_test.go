//go:build !linux

package main

import "errors"

// setImmutable is unsupported off Linux: the cases that need it are skipped.
func setImmutable(path string, on bool) error { return errors.ErrUnsupported }
