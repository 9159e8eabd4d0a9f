package layout

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// needTool skips the test when a tool is missing, except in CI (CI=true),
// where the Makefile's test-deps installs it and a missing tool is a failure.
func needTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (make test-deps)", n)
			}
			t.Skipf("%s not installed", n)
		}
	}
}

func run(t testing.TB, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sparseFile creates an empty sparse file of size bytes in the test's temp dir.
func sparseFile(t testing.TB, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// sfdisk applies a sfdisk script to a file or device.
func sfdisk(t testing.TB, dev, script string) {
	t.Helper()
	needTool(t, "sfdisk")
	run(t, script, "sfdisk", "-q", "--no-reread", "--no-tell-kernel", dev)
}

type sfdiskPart struct {
	Node     string `json:"node"`
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	UUID     string `json:"uuid"`
	Name     string `json:"name"`
	Attrs    string `json:"attrs"`
	Bootable bool   `json:"bootable"`
}

type sfdiskTable struct {
	Label      string       `json:"label"`
	ID         string       `json:"id"`
	FirstLBA   int64        `json:"firstlba"`
	LastLBA    int64        `json:"lastlba"`
	SectorSize int64        `json:"sectorsize"`
	Partitions []sfdiskPart `json:"partitions"`
}

func sfdiskJSON(t testing.TB, dev string) sfdiskTable {
	t.Helper()
	needTool(t, "sfdisk")
	out, err := exec.Command("sfdisk", "--json", dev).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", dev, err)
	}
	var v struct {
		PT sfdiskTable `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("sfdisk --json: %v\n%s", err, out)
	}
	return v.PT
}

// attrBits decodes sfdisk's GPT attribute string
// ("RequiredPartition LegacyBIOSBootable GUID:60,61").
func attrBits(t testing.TB, s string) uint64 {
	var bits uint64
	for _, f := range strings.Fields(s) {
		switch {
		case f == "RequiredPartition":
			bits |= 1 << 0
		case f == "NoBlockIOProtocol":
			bits |= 1 << 1
		case f == "LegacyBIOSBootable":
			bits |= 1 << 2
		case strings.HasPrefix(f, "GUID:"):
			for _, n := range strings.Split(strings.TrimPrefix(f, "GUID:"), ",") {
				b, err := strconv.Atoi(n)
				if err != nil {
					t.Fatalf("attrs %q: %v", s, err)
				}
				bits |= 1 << b
			}
		default:
			t.Fatalf("unknown sfdisk attribute %q", f)
		}
	}
	return bits
}

// nodeNumber returns the partition number at the end of a node name.
func nodeNumber(t testing.TB, node string) int {
	i := len(node)
	for i > 0 && node[i-1] >= '0' && node[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(node[i:])
	if err != nil {
		t.Fatalf("node %q: %v", node, err)
	}
	return n
}

// compareSfdisk checks tab against sfdisk's view of the same disk.
func compareSfdisk(t testing.TB, tab *Table, sf sfdiskTable) {
	t.Helper()
	wantKind := map[string]string{"gpt": KindGPT, "dos": KindMBR}[sf.Label]
	if tab.Kind != wantKind {
		t.Fatalf("kind %q, sfdisk says label %q", tab.Kind, sf.Label)
	}
	if sf.SectorSize != int64(tab.LogicalSector) {
		t.Fatalf("sector size %d, sfdisk says %d", tab.LogicalSector, sf.SectorSize)
	}
	if tab.Kind == KindGPT && tab.DiskGUID != strings.ToLower(sf.ID) {
		t.Errorf("disk GUID %s, sfdisk says %s", tab.DiskGUID, sf.ID)
	}
	if len(tab.Partitions) != len(sf.Partitions) {
		t.Fatalf("%d partitions, sfdisk lists %d: %+v", len(tab.Partitions), len(sf.Partitions), tab.Partitions)
	}
	ss := sf.SectorSize
	for i, sp := range sf.Partitions {
		p := tab.Partitions[i]
		want := Partition{
			Number:   nodeNumber(t, sp.Node),
			Start:    sp.Start * ss,
			Size:     sp.Size * ss,
			Name:     sp.Name,
			Bootable: sp.Bootable,
		}
		if tab.Kind == KindGPT {
			want.TypeGUID, want.UniqueGUID = strings.ToLower(sp.Type), strings.ToLower(sp.UUID)
			want.Attributes = attrBits(t, sp.Attrs)
		} else {
			want.MBRType = byte(mustHex(t, sp.Type))
		}
		if p != want {
			t.Errorf("partition %d:\n got  %+v\n want %+v (sfdisk)", i, p, want)
		}
	}
}

func mustHex(t testing.TB, s string) uint64 {
	n, err := strconv.ParseUint(s, 16, 8)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return n
}

// readFile runs Read on an image file.
func readFile(t testing.TB, path string, ls int) (*Table, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return Read(f, st.Size(), ls, ls)
}

func mustRead(t testing.TB, path string, ls int) *Table {
	t.Helper()
	tab, err := readFile(t, path, ls)
	if err != nil {
		t.Fatalf("Read %s: %v", filepath.Base(path), err)
	}
	return tab
}

// loopDevice attaches path as a loop device with the given logical sector
// size and detaches it when the test ends.
func loopDevice(t testing.TB, path string, ls int) string {
	t.Helper()
	needTool(t, "losetup")
	out, err := exec.Command("losetup", "-f", "--show", "-b", strconv.Itoa(ls), path).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("losetup: %v: %s", err, out)
		}
		t.Skipf("no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// patch overwrites bytes of a file.
func patch(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func readAt(t testing.TB, path string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

// copyExtents copies the given extents of src into a new sparse file of size bytes.
func copyExtents(t testing.TB, src string, es []Extent, size int64) string {
	t.Helper()
	dst := sparseFile(t, "target.img", size)
	for _, e := range es {
		if e.End() > size {
			continue
		}
		patch(t, dst, e.Off, readAt(t, src, e.Off, e.Len))
	}
	return dst
}

// memDisk is an in-memory ReaderWriterAt of fixed size.
type memDisk []byte

func (m memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memDisk) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, fmt.Errorf("write of %d bytes at %d beyond %d-byte disk", len(p), off, len(m))
	}
	return copy(m[off:], p), nil
}
