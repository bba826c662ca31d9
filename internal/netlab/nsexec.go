package netlab

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// withNS runs fn on the calling goroutine's OS thread while that thread is
// switched into the network namespace open as nsFD. Sockets created by fn stay
// in that namespace for their whole life, whatever thread uses them later.
//
// The caller must be a goroutine dedicated to this call: if the thread cannot
// be switched back, it stays locked so that the runtime discards it when the
// goroutine exits, instead of reusing a thread in the wrong namespace.
func withNS(nsFD int, fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current network namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(nsFD, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with the goroutine.
		return errors.Join(ferr, fmt.Errorf("setns back to the original namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// runInNS is withNS on a fresh goroutine, so that any caller may use it.
func runInNS(nsFD int, fn func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- withNS(nsFD, fn) }()
	return <-errc
}

// sysctl is one /proc/sys/net entry (path relative to /proc/sys) and its value.
type sysctl struct {
	path, value string
}

// writeSysctls writes the entries inside the namespace open as nsFD
// (/proc/sys/net shows the namespace of the thread that opens the file).
func writeSysctls(nsFD int, entries []sysctl) error {
	return runInNS(nsFD, func() error {
		for _, e := range entries {
			if err := os.WriteFile("/proc/sys/"+e.path, []byte(e.value+"\n"), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", e.path, e.value, err)
			}
		}
		return nil
	})
}
