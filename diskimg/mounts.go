package diskimg

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mounted file system that shows bytes of a disk.
type Mount struct {
	Dev   string // "major:minor"
	Point string
	RW    bool
}

// Mounts lists the mounts that sit on path's bytes: for a block device the
// device and its partitions, for an image file the loop devices backed by
// it (and their partitions).
func Mounts(path string) ([]Mount, error) {
	devs, err := devicesOf(path)
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superopts
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || !devs[fs[2]] {
			continue
		}
		rw := false
		for _, o := range strings.Split(fs[5], ",") {
			rw = rw || o == "rw"
		}
		out = append(out, Mount{Dev: fs[2], Point: unescapeMount(fs[4]), RW: rw})
	}
	return out, sc.Err()
}

// devicesOf returns the "major:minor" names of the block devices that
// expose path's bytes.
func devicesOf(path string) (map[string]bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	devs := map[string]bool{}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		addWithPartitions(devs, fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	case unix.S_IFREG:
		abs, err := filepath.Abs(path)
		if err == nil {
			if r, err := filepath.EvalSymlinks(abs); err == nil {
				abs = r
			}
		}
		loops, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
		for _, bf := range loops {
			b, err := os.ReadFile(bf)
			if err != nil || strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)") != abs {
				continue
			}
			if d, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(bf)), "dev")); err == nil {
				addWithPartitions(devs, strings.TrimSpace(string(d)))
			}
		}
	}
	return devs, nil
}

// addWithPartitions adds a device and the partitions sysfs lists under it.
func addWithPartitions(devs map[string]bool, dev string) {
	devs[dev] = true
	base := "/sys/dev/block/" + dev
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(base, e.Name(), "partition")); err != nil {
			continue
		}
		if d, err := os.ReadFile(filepath.Join(base, e.Name(), "dev")); err == nil {
			devs[strings.TrimSpace(string(d))] = true
		}
	}
}

// unescapeMount undoes the octal escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
