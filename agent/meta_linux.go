package agent

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"bes/store/manifest"
)

// setFileMeta sets owner (as root), mode and times on an open file: owner
// first, since chown clears setuid bits.
func setFileMeta(f *os.File, e *manifest.Entry, asRoot bool) error {
	if asRoot {
		if err := f.Chown(int(e.UID), int(e.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := f.Chmod(fileMode(e.Mode)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	// utimensat(fd, NULL, ts, 0) is futimens: nanoseconds, on the descriptor.
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); errno != 0 {
		return fmt.Errorf("set times: %w", errno)
	}
	return nil
}
