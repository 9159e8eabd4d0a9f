package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"bes/store/manifest"
)

// processUmask reads the umask without changing it (umask(2) would, for
// the whole process, racing other goroutines); 022 if it cannot be read.
func processUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o022
}

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
		if err := f.Chmod(manifest.FileMode(e.Mode)); err != nil {
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
