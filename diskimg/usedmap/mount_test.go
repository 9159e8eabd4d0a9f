package usedmap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loopMount attaches img to a loop device and mounts it at mnt; the
// returned function unmounts and detaches (also run by t.Cleanup).
// It skips the test where loop mounts are not possible.
func loopMount(t *testing.T, img, mnt string, fstype string) (unmount func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop mounts")
	}
	need(t, "losetup", "mount", "umount")
	out, code := runCode("losetup", "-f", "--show", img)
	if code != 0 {
		t.Skipf("losetup: %s", out)
	}
	dev := strings.TrimSpace(out)
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, code := runCode("mount", "-t", fstype, dev, mnt); code != 0 {
		runCode("losetup", "-d", dev)
		t.Skipf("mount %s: %s", dev, out)
	}
	done := false
	unmount = func() {
		if done {
			return
		}
		done = true
		if out, code := runCode("umount", mnt); code != 0 {
			t.Errorf("umount %s: %s", mnt, out)
		}
		if out, code := runCode("losetup", "-d", dev); code != 0 {
			t.Errorf("losetup -d %s: %s", dev, out)
		}
	}
	t.Cleanup(unmount)
	return unmount
}

// churn writes files through the kernel, deletes every other one and
// writes more, so allocation follows the kernel's own rules.
func churn(t *testing.T, mnt string) {
	t.Helper()
	populate(t, filepath.Join(mnt, "first"), 1, 40, 512<<10)
	for i := 0; i < 40; i += 2 {
		p := filepath.Join(mnt, "first", fmt.Sprintf("d%d", i%4), fmt.Sprintf("e%d", i%3), fmt.Sprintf("f%03d", i))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	populate(t, filepath.Join(mnt, "second"), 2, 30, 2<<20)
	run(t, "sync")
}

func TestExtAfterKernelWrites(t *testing.T) {
	need(t, "mke2fs", "dumpe2fs", "e2fsck", "debugfs")
	for _, tc := range []struct {
		name, fstype, mkfs, fs string
	}{
		{"ext4", "ext4", "-t ext4 -b 4096", "ext4"},
		{"ext4-1k", "ext4", "-t ext4 -b 1024", "ext4"},
		{"ext2", "ext2", "-t ext2 -b 4096", "ext2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "img")
			newImage(t, img, 192<<20, true)
			run(t, "mke2fs", append(strings.Fields(tc.mkfs), "-F", "-q", "-E", "nodiscard", img)...)
			mnt := filepath.Join(dir, "mnt")
			unmount := loopMount(t, img, mnt, tc.fstype)
			churn(t, mnt)

			// Mounted: the on-disk bitmaps may be stale, so Ext must refuse.
			f, size := openImage(t, img)
			if _, err := Ext(f, size); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Ext on a mounted filesystem: %v, want ErrUnsupported", err)
			}
			unmount()
			checkExtImage(t, img, tc.fs)
		})
	}
}
