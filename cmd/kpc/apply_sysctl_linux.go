//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// writeSysctl writes value to the /proc/sys file path as seen from the
// network namespace at nsPath ("" = ours): /proc/sys/net shows the
// namespace of the thread that opens the file. The thread switched into
// another namespace stays locked to its goroutine, so the runtime discards
// it when the goroutine ends instead of reusing it.
func writeSysctl(nsPath, path, value string) error {
	write := func() error {
		if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
			return fmt.Errorf("sysctl: %w", err)
		}
		return nil
	}
	if nsPath == "" {
		return write()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(nsPath)
		if err != nil {
			errc <- fmt.Errorf("sysctl: %w", err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("sysctl: entering %s: %w", nsPath, err)
			return
		}
		errc <- write()
	}()
	return <-errc
}
