package diskimg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bes/diskimg/layout"
	"bes/diskimg/usedmap"
	"bes/store"
	"bes/store/crypt"
	"bes/store/manifest"
)

func newRepo(t testing.TB) *store.Repo {
	t.Helper()
	r, err := store.Init(context.Background(), store.InitOptions{Dir: filepath.Join(t.TempDir(), "repo"),
		KEK: crypt.PassphraseWithCost([]byte("pw"), crypt.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 3))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// tree writes a small file tree with text, random and sparse data.
func tree(t testing.TB, dir string, seed uint64) {
	t.Helper()
	for i := range 12 {
		p := filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%d.dat", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		var data []byte
		switch i % 3 {
		case 0:
			data = bytes.Repeat([]byte(fmt.Sprintf("line %d of some text\n", i)), 2000*(i+1))
		case 1:
			data = randBytes(seed+uint64(i), 300<<10*(i+1))
		default:
			data = append(make([]byte, 1<<20), randBytes(seed+uint64(i), 4096)...)
		}
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.Symlink("d0/f0.dat", filepath.Join(dir, "link"))
}

type part struct {
	start, size int64
}

// partitions reads start/size (bytes) of each partition with sfdisk.
func partitions(t testing.TB, img string) []part {
	t.Helper()
	var ps []part
	for _, line := range strings.Split(run(t, "", "sfdisk", "-d", img), "\n") {
		if !strings.HasPrefix(line, img) {
			continue
		}
		var st, sz int64
		for _, f := range strings.Split(strings.SplitN(line, ":", 2)[1], ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			switch strings.TrimSpace(k) {
			case "start":
				fmt.Sscan(strings.TrimSpace(v), &st)
			case "size":
				fmt.Sscan(strings.TrimSpace(v), &sz)
			}
		}
		ps = append(ps, part{st * 512, sz * 512})
	}
	return ps
}

// makeDisk builds a disk image: label "gpt" or "dos", an ext4 partition
// filled from a tree, and a FAT32 partition with a few files.
func makeDisk(t testing.TB, dir, label string) string {
	t.Helper()
	img := filepath.Join(dir, "disk.img")
	if err := os.Truncate(img, 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	f, _ := os.Create(img)
	f.Truncate(160 << 20)
	f.Close()
	run(t, "label: "+label+"\nsize=96MiB, type=L\nsize=48MiB, type="+map[string]string{"gpt": "U", "dos": "c"}[label]+"\n", "sfdisk", "-q", img)
	ps := partitions(t, img)
	src := filepath.Join(dir, "tree")
	tree(t, src, 1)
	p1 := filepath.Join(dir, "p1.img")
	p2 := filepath.Join(dir, "p2.img")
	os.WriteFile(p1, nil, 0o600)
	os.Truncate(p1, ps[0].size)
	run(t, "", "mkfs.ext4", "-q", "-F", "-d", src, p1)
	os.WriteFile(p2, nil, 0o600)
	os.Truncate(p2, ps[1].size)
	run(t, "", "mkfs.vfat", "-F", "32", p2)
	os.WriteFile(filepath.Join(dir, "fat.bin"), randBytes(9, 700<<10), 0o644)
	run(t, "", "mcopy", "-i", p2, filepath.Join(dir, "fat.bin"), "::/")
	copyInto(t, img, p1, ps[0].start)
	copyInto(t, img, p2, ps[1].start)
	return img
}

// copyInto writes file src into dst at off, keeping holes.
func copyInto(t testing.TB, dst, src string, off int64) {
	t.Helper()
	run(t, "", "dd", "if="+src, "of="+dst, "bs=1M", "oflag=seek_bytes", fmt.Sprintf("seek=%d", off), "conv=notrunc,sparse", "status=none")
}

// region hashes len bytes of a file at off.
func region(t testing.TB, path string, off, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// fsckPart extracts a partition of img into a file and checks it.
func fsckPart(t testing.TB, img string, p part, tool ...string) {
	t.Helper()
	out := img + ".part"
	run(t, "", "dd", "if="+img, "of="+out, "bs=1M", "iflag=skip_bytes,count_bytes", fmt.Sprintf("skip=%d", p.start), fmt.Sprintf("count=%d", p.size), "conv=sparse", "status=none")
	defer os.Remove(out)
	run(t, "", tool[0], append(tool[1:], out)...)
}

func backup(t testing.TB, r *store.Repo, src string, o BackupOptions) *Result {
	t.Helper()
	o.Logger = slog.New(slog.DiscardHandler)
	res, err := Backup(context.Background(), r, src, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func restore(t testing.TB, r *store.Repo, p *store.Point, target string, size int64, o RestoreOptions) *RestoreSummary {
	t.Helper()
	if size > 0 {
		os.Remove(target)
		f, _ := os.Create(target)
		f.Truncate(size)
		f.Close()
	}
	o.Target, o.Overwrite = target, true
	sum, err := Restore(context.Background(), r, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestImageRoundTrip(t *testing.T) {
	for _, label := range []string{"gpt", "dos"} {
		t.Run(label, func(t *testing.T) {
			dir := t.TempDir()
			img := makeDisk(t, dir, label)
			r := newRepo(t)
			res := backup(t, r, img, BackupOptions{Host: "vm"})
			if res.Info.Table.Kind != map[string]string{"gpt": "gpt", "dos": "mbr"}[label] || len(res.Info.Parts) != 2 {
				t.Fatalf("table %s with %d partitions", res.Info.Table.Kind, len(res.Info.Parts))
			}
			if p := res.Info.Parts; p[0].FS != "ext4" || p[0].Method != "ext-bitmap" || p[1].FS != "fat32" || p[1].Method != "fat-table" {
				t.Fatalf("methods: %+v", p)
			}
			if st := res.Point.Stats; st.BytesRead > 60<<20 {
				t.Errorf("read %d bytes of a 160 MiB disk holding ~10 MiB", st.BytesRead)
			}
			ps := partitions(t, img)
			for _, tc := range []struct {
				name string
				size int64
			}{{"same", 160 << 20}, {"larger", 300 << 20}} {
				out := filepath.Join(dir, tc.name+".img")
				sum := restore(t, r, res.Point, out, tc.size, RestoreOptions{Verify: true})
				if !sum.Verified || sum.Relocated != (label == "gpt" && tc.name == "larger") {
					t.Fatalf("%s: %+v", tc.name, sum)
				}
				if label == "gpt" {
					if out := run(t, "", "sgdisk", "-v", out); !strings.Contains(out, "No problems found") {
						t.Fatalf("%s: sgdisk -v: %s", tc.name, out)
					}
				}
				if got := partitions(t, out); fmt.Sprint(got) != fmt.Sprint(ps) {
					t.Fatalf("%s: partitions %v, want %v", tc.name, got, ps)
				}
				fsckPart(t, out, ps[0], "e2fsck", "-fn")
				fsckPart(t, out, ps[1], "fsck.vfat", "-n")
				// The FAT partition's used clusters and the whole ext4 file
				// contents: compare the data files through debugfs.
				for _, f := range []string{"/d0/f0.dat", "/d1/f4.dat", "/d2/f5.dat"} {
					if a, b := debugfsCat(t, img, ps[0], f), debugfsCat(t, out, ps[0], f); !bytes.Equal(a, b) || len(a) == 0 {
						t.Fatalf("%s: %s differs (%d vs %d bytes)", tc.name, f, len(a), len(b))
					}
				}
			}
		})
	}
}

func debugfsCat(t testing.TB, img string, p part, name string) []byte {
	t.Helper()
	out := img + ".dbg"
	run(t, "", "dd", "if="+img, "of="+out, "bs=1M", "iflag=skip_bytes,count_bytes", fmt.Sprintf("skip=%d", p.start), fmt.Sprintf("count=%d", p.size), "conv=sparse", "status=none")
	defer os.Remove(out)
	cmd := exec.Command("debugfs", "-R", "cat "+name, out)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("debugfs cat %s: %v", name, err)
	}
	return b
}

func TestImageIncremental(t *testing.T) {
	dir := t.TempDir()
	img := makeDisk(t, dir, "gpt")
	ps := partitions(t, img)
	r := newRepo(t)
	first := backup(t, r, img, BackupOptions{})
	// change 2 MiB inside the ext4 partition's used area (through debugfs)
	p1 := filepath.Join(dir, "p1.img")
	os.WriteFile(filepath.Join(dir, "new.bin"), randBytes(77, 2<<20), 0o644)
	run(t, "", "dd", "if="+img, "of="+p1, "bs=1M", "iflag=skip_bytes,count_bytes", fmt.Sprintf("skip=%d", ps[0].start), fmt.Sprintf("count=%d", ps[0].size), "conv=sparse", "status=none")
	run(t, "", "debugfs", "-w", "-R", "write "+filepath.Join(dir, "new.bin")+" new.bin", p1)
	copyInto(t, img, p1, ps[0].start)
	second := backup(t, r, img, BackupOptions{})
	if second.Point.Type != store.TypeIncremental || second.Point.Parent != first.Point.ID || second.Point.Chain != first.Point.Chain {
		t.Fatalf("second point: type %s parent %s chain %s", second.Point.Type, second.Point.Parent, second.Point.Chain)
	}
	if n := second.Point.Stats.NewBytes; n > 6<<20 {
		t.Errorf("incremental after a 2 MiB change wrote %d new bytes", n)
	}
	f4, _ := os.ReadFile(filepath.Join(dir, "tree", "d1", "f4.dat"))
	for _, c := range []struct {
		p      *store.Point
		hasNew bool
	}{{first.Point, false}, {second.Point, true}} {
		// Unused blocks are holes in a restore, so the partition is compared
		// by what it holds: it must fsck clean and hold that point's files.
		out := filepath.Join(dir, "r.img")
		restore(t, r, c.p, out, 160<<20, RestoreOptions{})
		fsckPart(t, out, ps[0], "e2fsck", "-fn")
		if got := debugfsCat(t, out, ps[0], "/d1/f4.dat"); !bytes.Equal(got, f4) {
			t.Fatalf("%s: d1/f4.dat differs after restore", c.p.Type)
		}
		got := debugfsCat(t, out, ps[0], "/new.bin")
		if c.hasNew != bytes.Equal(got, randBytes(77, 2<<20)) || (!c.hasNew && len(got) != 0) {
			t.Fatalf("%s point: new.bin has %d bytes after restore", c.p.Type, len(got))
		}
	}
}

func TestImageUnknownFSBitIdentical(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "raw.img")
	f, _ := os.Create(img)
	f.Truncate(64 << 20)
	// random data at a few places, zeros elsewhere
	for i, off := range []int64{0, 5 << 20, 33<<20 + 12345, 63 << 20} {
		f.WriteAt(randBytes(uint64(i), 300<<10)[:min(300<<10, 64<<20-off)], off)
	}
	f.Close()
	r := newRepo(t)
	res := backup(t, r, img, BackupOptions{})
	if res.Info.Table.Kind != layout.KindNone || res.Info.Parts[0].Method != "zero-scan" {
		t.Fatalf("table %s, method %s", res.Info.Table.Kind, res.Info.Parts[0].Method)
	}
	out := filepath.Join(dir, "out.img")
	restore(t, r, res.Point, out, 0, RestoreOptions{Verify: true})
	if region(t, out, 0, 64<<20) != region(t, img, 0, 64<<20) {
		t.Fatal("zero-scanned image does not restore bit-identically")
	}
}

func TestImageRefusals(t *testing.T) {
	dir := t.TempDir()
	img := makeDisk(t, dir, "gpt")
	r := newRepo(t)
	res := backup(t, r, img, BackupOptions{})
	small := filepath.Join(dir, "small.img")
	f, _ := os.Create(small)
	f.Truncate(100 << 20)
	f.Close()
	_, err := Restore(context.Background(), r, res.Point, RestoreOptions{Target: small, Overwrite: true})
	if !errors.Is(err, layout.ErrTooSmall) {
		t.Fatalf("smaller target: %v", err)
	}
	exists := filepath.Join(dir, "exists.img")
	os.WriteFile(exists, []byte("data"), 0o600)
	if _, err := Restore(context.Background(), r, res.Point, RestoreOptions{Target: exists}); !errors.Is(err, ErrTargetExists) {
		t.Fatalf("existing target without --overwrite: %v", err)
	}
	// a truncated image (its GPT names space beyond the end) is refused
	trunc := filepath.Join(dir, "trunc.img")
	run(t, "", "cp", "--sparse=always", img, trunc)
	os.Truncate(trunc, 100<<20)
	if _, err := Backup(context.Background(), r, trunc, BackupOptions{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("truncated image accepted")
	}
	ps, _ := r.Points(context.Background(), catalogFilter(""))
	if len(ps) != 1 {
		t.Fatalf("%d points after refused backups, want 1", len(ps))
	}
}

func TestImageMountedRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices") // CI runs as root
	}
	dir := t.TempDir()
	img := makeDisk(t, dir, "gpt")
	ps := partitions(t, img)
	loop := strings.TrimSpace(run(t, "", "losetup", "-f", "--show", "-o", fmt.Sprint(ps[0].start), "--sizelimit", fmt.Sprint(ps[0].size), img))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	run(t, "", "mount", loop, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	r := newRepo(t)
	_, err := Backup(context.Background(), r, img, BackupOptions{Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, ErrMountedRW) {
		t.Fatalf("backup of a disk with a partition mounted rw: %v", err)
	}
	res := backup(t, r, img, BackupOptions{AllowLive: true})
	_, err = Restore(context.Background(), r, res.Point, RestoreOptions{Target: img, Overwrite: true})
	if !errors.Is(err, ErrTargetMounted) {
		t.Fatalf("restore onto a mounted disk: %v", err)
	}
}

// failingReader fails after n bytes.
type failingReader struct {
	r io.ReaderAt
	n int64
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.n {
		return 0, errors.New("device vanished")
	}
	return f.r.ReadAt(p, off)
}

func TestLVMSnapshotSequence(t *testing.T) {
	var calls []string
	fake := func(fail string) Runner {
		return func(ctx context.Context, name string, args ...string) ([]byte, error) {
			calls = append(calls, name)
			if name == fail {
				return nil, errors.New(name + " failed")
			}
			if name == "lvs" {
				return []byte("  vg0/root\n"), nil
			}
			return nil, nil
		}
	}
	for _, tc := range []struct {
		fail, fnErr string
		want        string
		ok          bool
	}{
		{"", "", "lvs lvcreate fn lvremove", true},
		{"", "read failed", "lvs lvcreate fn lvremove", false},
		{"lvcreate", "", "lvs lvcreate", false},
		{"lvremove", "", "lvs lvcreate fn lvremove", false},
		{"lvs", "", "lvs", false},
	} {
		calls = nil
		var dev string
		err := withLVMSnapshot(context.Background(), fake(tc.fail), "/dev/vg0/root", func(d string) error {
			calls, dev = append(calls, "fn"), d
			if tc.fnErr != "" {
				return errors.New(tc.fnErr)
			}
			return nil
		})
		if got := strings.Join(calls, " "); got != tc.want || (err == nil) != tc.ok {
			t.Errorf("fail=%q fn=%q: calls %q err %v", tc.fail, tc.fnErr, got, err)
		}
		if dev != "" && !strings.HasPrefix(dev, "/dev/vg0/bes-snap-") {
			t.Errorf("snapshot device %q", dev)
		}
	}
}

func TestReadErrorFailsBackup(t *testing.T) {
	r := newRepo(t)
	saver, err := r.NewSaver(store.SaverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer saver.Abort()
	data := bytes.NewReader(randBytes(5, 8<<20))
	b := &imager{src: &failingReader{data, 5 << 20}, saver: saver, keys: r.Keys(), cs: 256 << 10, size: 8 << 20, o: BackupOptions{Workers: 2}}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	_, err = b.run(ctx, cancel, []usedmap.Extent{{Off: 0, Len: 8 << 20}})
	if err == nil || !strings.Contains(err.Error(), "device vanished") {
		t.Fatalf("read error: %v", err)
	}
}

func TestDiskReader(t *testing.T) {
	dir := t.TempDir()
	img := makeDisk(t, dir, "gpt")
	r := newRepo(t)
	res := backup(t, r, img, BackupOptions{})
	im, err := Load(context.Background(), r, res.Point)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDiskReader(context.Background(), r, im, 4)
	if d.Size() != 160<<20 {
		t.Fatalf("size %d", d.Size())
	}
	// Used areas read back as they are on the source: the ext4 partition
	// read through debugfs from the store-backed reader equals the source.
	ps := partitions(t, img)
	sec, err := im.Partition(d, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "p1-from-store.img")
	f, _ := os.Create(out)
	if _, err := io.Copy(f, sec); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "", "e2fsck", "-fn", out)
	whole := part{0, ps[0].size}
	if a, b := debugfsCat(t, out, whole, "/d1/f4.dat"), debugfsCat(t, img, ps[0], "/d1/f4.dat"); !bytes.Equal(a, b) {
		t.Fatal("file read through the DiskReader differs")
	}
	// random small reads across chunk boundaries match the restored disk
	full := filepath.Join(dir, "full.img")
	restore(t, r, res.Point, full, 0, RestoreOptions{})
	want, _ := os.ReadFile(full)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := rng.Int64N(d.Size() - 1)
		n := min(int64(rng.IntN(600<<10)+1), d.Size()-off)
		got := make([]byte, n)
		if _, err := d.ReadAt(got, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[off:off+n]) {
			t.Fatalf("read %d@%d differs", n, off)
		}
	}
	if _, err := im.Partition(d, 7); err == nil {
		t.Fatal("partition 7 found")
	}
}

func TestBrowseAndRestoreFiles(t *testing.T) {
	dir := t.TempDir()
	img := makeDisk(t, dir, "gpt")
	r := newRepo(t)
	res := backup(t, r, img, BackupOptions{})
	b, err := Browse(context.Background(), r, res.Point)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	err = b.Walk(context.Background(), "", func(err error) { t.Error(err) }, func(e *manifest.Entry) error {
		paths = append(paths, e.Path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(paths, " ")
	for _, want := range []string{"part1/d1/f4.dat", "part1/link", "part2/FAT.BIN"} {
		if !strings.Contains(strings.ToUpper(got), strings.ToUpper(want)) {
			t.Errorf("walk lacks %s: %s", want, got)
		}
	}
	out := filepath.Join(dir, "out")
	sum, err := b.RestoreFiles(context.Background(), FileRestoreOptions{Target: out, Includes: []string{"part1/d1", "part1/link"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 4 || sum.Symlinks != 1 {
		t.Errorf("restored %d files, %d links", sum.Files, sum.Symlinks)
	}
	for _, f := range []string{"d1/f1.dat", "d1/f4.dat", "d1/f7.dat", "d1/f10.dat"} {
		a, _ := os.ReadFile(filepath.Join(dir, "tree", f))
		c, err := os.ReadFile(filepath.Join(out, "part1", f))
		if err != nil || !bytes.Equal(a, c) {
			t.Errorf("%s differs (%v)", f, err)
		}
		st1, _ := os.Stat(filepath.Join(dir, "tree", f))
		st2, _ := os.Stat(filepath.Join(out, "part1", f))
		if st2 == nil || st1.Mode() != st2.Mode() || st1.ModTime().Unix() != st2.ModTime().Unix() { // mke2fs -d keeps whole seconds
			t.Errorf("%s: metadata differs: %v %v / %v %v", f, st1.Mode(), st1.ModTime(), st2.Mode(), st2.ModTime())
		}
	}
	if l, _ := os.Readlink(filepath.Join(out, "part1", "link")); l != "d0/f0.dat" {
		t.Errorf("link -> %q", l)
	}
	if _, err := b.RestoreFiles(context.Background(), FileRestoreOptions{Target: out, Includes: []string{"part9/x"}}); err == nil {
		t.Error("include of a missing partition accepted")
	}
}

func TestRestoreToLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices") // CI runs as root
	}
	dir := t.TempDir()
	img := makeDisk(t, dir, "gpt")
	ps := partitions(t, img)
	r := newRepo(t)
	res := backup(t, r, img, BackupOptions{})
	back := filepath.Join(dir, "dev.img")
	f, _ := os.Create(back)
	f.Truncate(200 << 20)
	f.WriteAt(bytes.Repeat([]byte{0xAB}, 1<<20), 150<<20) // old data on the "device"
	f.Close()
	loop := strings.TrimSpace(run(t, "", "losetup", "-f", "--show", back))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	if _, err := Restore(context.Background(), r, res.Point, RestoreOptions{Target: loop}); !errors.Is(err, ErrTargetExists) {
		t.Fatalf("device without --overwrite: %v", err)
	}
	sum, err := Restore(context.Background(), r, res.Point, RestoreOptions{Target: loop, Overwrite: true, Verify: true, ZeroUnused: true})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Relocated || !sum.Verified || sum.TargetSize != 200<<20 {
		t.Fatalf("summary %+v", sum)
	}
	run(t, "", "losetup", "-d", loop)
	if out := run(t, "", "sgdisk", "-v", back); !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk -v: %s", out)
	}
	fsckPart(t, back, ps[0], "e2fsck", "-fn")
	fsckPart(t, back, ps[1], "fsck.vfat", "-n")
	if region(t, back, 150<<20, 1<<20) != sha256.Sum256(make([]byte, 1<<20)) {
		t.Fatal("--zero-unused left old data in unused space")
	}
}

// A source that shrinks under its mapping gives an error, not a crash.
func TestMappedSourceShrinks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "src.img")
	os.WriteFile(p, randBytes(3, 4<<20), 0o600)
	src, err := OpenSource(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Map() == nil {
		t.Skip("no mmap here")
	}
	os.Truncate(p, 1<<20)
	r := newRepo(t)
	saver, _ := r.NewSaver(store.SaverOptions{})
	defer saver.Abort()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	b := &imager{src: src, saver: saver, keys: r.Keys(), cs: 256 << 10, size: 4 << 20, o: BackupOptions{Workers: 2}, mem: src.Map()}
	_, err = b.run(ctx, cancel, []usedmap.Extent{{Off: 0, Len: 4 << 20}})
	if err == nil || !strings.Contains(err.Error(), "changed size") {
		t.Fatalf("backup of a shrunk mapped source: %v", err)
	}
}
