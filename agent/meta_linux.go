package agent

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"bes/store/manifest"
)

// createPerm is the mode a restored file is created with: its own
// permission bits, writable by the owner while it is being written.
func createPerm(mode uint32) uint32 { return mode&0o777 | 0o200 }

// setFileMeta sets owner (as root), mode and times on an open file created
// with permission bits created. Owner first, since chown clears setuid
// bits; chown and chmod are skipped when they would change nothing.
func setFileMeta(f *os.File, e *manifest.Entry, asRoot bool, created uint32) error {
	chowned := false
	if asRoot && (int(e.UID) != os.Geteuid() || int(e.GID) != os.Getegid()) {
		if err := f.Chown(int(e.UID), int(e.GID)); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		chowned = true
	}
	if chowned || created != e.Mode&0o7777 {
		if err := f.Chmod(fileMode(e.Mode)); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := [2]unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	// utimensat(fd, NULL, ts, 0) is futimens: nanoseconds, on the descriptor.
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); errno != 0 {
		return fmt.Errorf("set times: %w", errno)
	}
	return nil
}
