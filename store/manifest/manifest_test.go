package manifest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.bin")

func id(n int) (h [32]byte) {
	for i := range h {
		h[i] = byte(n*31 + i)
	}
	return h
}

func file(path string, sizes ...uint32) *Entry {
	e := &Entry{Path: path, Kind: KindFile, Mode: 0644, UID: 1000, GID: 1000, User: "u", Group: "g",
		MTime: 1700000000123456789, CTime: 1700000000123456789, Inode: 42, Dev: 2049, Nlink: 1}
	for i, s := range sizes {
		e.Chunks = append(e.Chunks, ChunkRef{ID: id(i + len(path)), Size: s})
		e.Size += int64(s)
	}
	return e
}

func dir(path string) *Entry {
	return &Entry{Path: path, Kind: KindDir, Mode: 0755, UID: 1000, GID: 1000, User: "u", Group: "g",
		MTime: 1600000000000000000, CTime: 1600000000000000001, Inode: 7, Dev: 2049, Nlink: 2, Size: 4096}
}

// normalize maps representations that legitimately differ after a round trip
// (nil vs empty) to one form.
func normalize(e *Entry) *Entry {
	c := e.Clone()
	if len(c.Chunks) == 0 {
		c.Chunks = nil
	}
	if len(c.Xattrs) == 0 {
		c.Xattrs = nil
	}
	for k, v := range c.Xattrs {
		if len(v) == 0 {
			c.Xattrs[k] = []byte{}
		}
	}
	return c
}

func equalEntries(t *testing.T, got, want []*Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := normalize(got[i]), normalize(want[i])
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("entry %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

// sample is a small manifest using every kind and most features.
func sample() []*Entry {
	huge := file("big/huge")
	for i := range 100000 {
		huge.Chunks = append(huge.Chunks, ChunkRef{ID: id(i), Size: uint32(i%1000 + 1)})
		huge.Size += int64(i%1000 + 1)
	}
	return []*Entry{
		dir("a"),
		file("a/b", 10, 20),
		{Path: "a/b c", Kind: KindSymlink, Mode: 0777, Target: "../../etc/passwd\nwith newline", Size: 29, MTime: -5, CTime: -7, Nlink: 1},
		dir("a/dir"),
		{Path: "a/dir/fifo", Kind: KindFIFO, Mode: 0600, UID: 0, GID: 0, MTime: 1, CTime: 1},
		{Path: "a/dir/sda", Kind: KindDevice, Mode: 0660, Rdev: 0x0800, User: "root", Group: "disk", GID: 6},
		{Path: "a/dir/sock", Kind: KindSocket, Mode: 0755},
		{Path: "a/dir/tty", Kind: KindCharDevice, Mode: 06755 & 07777, Rdev: math.MaxUint64, Inode: math.MaxUint64, Dev: math.MaxUint64, UID: math.MaxUint32, GID: math.MaxUint32, Nlink: math.MaxUint32, MTime: math.MinInt64, CTime: math.MaxInt64},
		file("a/empty"),
		file("a/empty1", 0),
		{Path: "a/x", Kind: KindFile, Mode: 01777, Xattrs: map[string][]byte{"user.a": []byte("1"), "security.selinux": []byte("system_u:object_r:x\x00"), "user.empty": nil, "user.big": bytes.Repeat([]byte{0xAB}, MaxXattrValueLen)}},
		dir("a!"),
		file("a!/späce über\nnewline\ttab", 1),
		file("a!/\xff\xfe not utf8", 3),
		file("a0", 5),
		huge,
		dir("big/zz"),
		{Path: strings.Repeat("p", 255) + "/" + strings.Repeat("q", MaxPathLen-256), Kind: KindFile},
	}
}

// smallSample is sample without the 100k-chunk file and the 64 KiB xattr,
// for tests that decode it many times.
func smallSample() []*Entry {
	es := sample()[:15]
	for _, e := range es {
		if e.Xattrs != nil {
			e.Xattrs["user.big"] = []byte("big")
		}
	}
	return es
}

func TestRoundTrip(t *testing.T) {
	es := sample()
	b, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	equalEntries(t, got, es)

	// Through a one-byte reader (exercises every slow path of the decoder).
	r := NewReader(iotest.OneByteReader(bytes.NewReader(b)))
	var n int
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		equalEntries(t, []*Entry{e}, es[n:n+1])
		n++
	}
	if n != len(es) || r.Count() != int64(len(es)) {
		t.Fatalf("read %d entries", n)
	}
	// Errors are sticky; io.EOF repeats.
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("second EOF: %v", err)
	}
}

func TestRoundTripEachKind(t *testing.T) {
	for _, e := range sample() {
		t.Run(e.Kind.String(), func(t *testing.T) {
			b, err := Encode([]*Entry{e})
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			equalEntries(t, got, []*Entry{e})
		})
	}
}

func TestEmpty(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("BESMAN01\x01")) {
		t.Fatalf("bad header %q", buf.Bytes())
	}
	es, err := Decode(buf.Bytes())
	if err != nil || len(es) != 0 {
		t.Fatal(es, err)
	}
	if err := w.Write(dir("a")); err == nil {
		t.Fatal("write after close")
	}
	if _, err := Decode(nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty input: %v", err)
	}
}

func TestReaderReusesEntry(t *testing.T) {
	b, err := Encode([]*Entry{file("a", 1), file("b", 2)})
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(bytes.NewReader(b))
	e1, _ := r.Next()
	p1 := e1.Path
	e2, _ := r.Next()
	if e1 != e2 || p1 != "a" || e2.Path != "b" {
		t.Fatalf("unexpected: %p %p %q %q", e1, e2, p1, e2.Path)
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindFile: "file", KindDir: "dir", KindSymlink: "symlink", KindFIFO: "fifo",
		KindDevice: "device", KindCharDevice: "chardevice", KindSocket: "socket", 0: "kind(0)", 8: "kind(8)"} {
		if k.String() != want {
			t.Errorf("%d: %q want %q", k, k.String(), want)
		}
	}
}

// lessRef is the reference definition: compare component by component.
func lessRef(a, b string) bool {
	ca, cb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(ca) && i < len(cb); i++ {
		if ca[i] != cb[i] {
			return ca[i] < cb[i]
		}
	}
	return len(ca) < len(cb)
}

func TestLess(t *testing.T) {
	ordered := []string{"a", "a/b", "a/b/c", "a/b c", "a/b!", "a/c", "a b", "a!", "a0", "b", "b/a", "\xff"}
	for i := range ordered {
		for j := range ordered {
			if got := Less(ordered[i], ordered[j]); got != (i < j) {
				t.Errorf("Less(%q, %q) = %v", ordered[i], ordered[j], got)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := "ab/.\x01\xff "
	gen := func() string {
		n := rng.IntN(6) + 1
		var sb strings.Builder
		for range n {
			sb.WriteByte(alpha[rng.IntN(len(alpha))])
		}
		return sb.String()
	}
	for range 100000 {
		a, b := gen(), gen()
		if ValidPath(a) != nil || ValidPath(b) != nil {
			continue
		}
		if Less(a, b) != lessRef(a, b) {
			t.Fatalf("Less(%q, %q) = %v, reference %v", a, b, Less(a, b), lessRef(a, b))
		}
	}
}

func TestValidPath(t *testing.T) {
	good := []string{"a", "a/b", "...", ".a", "a.", "..a/b..", "a b/ c\n", "ü", strings.Repeat("x", MaxPathLen)}
	bad := []string{"", "/", "/a", "a/", "a//b", ".", "..", "a/.", "a/..", "../a", "a/./b", "a/../b", "a\x00b",
		strings.Repeat("x", MaxPathLen+1), "../../etc/passwd"}
	for _, p := range good {
		if err := ValidPath(p); err != nil {
			t.Errorf("ValidPath(%q) = %v", p, err)
		}
	}
	for _, p := range bad {
		if err := ValidPath(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidPath(%q) = %v, want ErrInvalid", p, err)
		}
	}
}

func TestWriteRejects(t *testing.T) {
	mod := func(e *Entry, f func(*Entry)) *Entry { f(e); return e }
	cases := []struct {
		name  string
		prev  []*Entry
		e     *Entry
		order bool // expect ErrOrder rather than ErrInvalid
	}{
		{name: "nil", e: nil},
		{name: "dotdot", e: file("../../etc/passwd")},
		{name: "abs", e: file("/etc/passwd")},
		{name: "empty", e: file("")},
		{name: "double slash", e: file("a//b")},
		{name: "trailing slash", e: file("a/")},
		{name: "nul", e: file("a\x00")},
		{name: "kind 0", e: mod(file("a"), func(e *Entry) { e.Kind = 0 })},
		{name: "kind 8", e: mod(file("a"), func(e *Entry) { e.Kind = 8 })},
		{name: "mode", e: mod(file("a"), func(e *Entry) { e.Mode = 010644 })},
		{name: "size mismatch", e: mod(file("a", 5), func(e *Entry) { e.Size = 6 })},
		{name: "negative size", e: mod(dir("a"), func(e *Entry) { e.Size = -1 })},
		{name: "too many chunks", e: file("a", 0, 0)},
		{name: "chunks on dir", e: mod(dir("a"), func(e *Entry) { e.Chunks = []ChunkRef{{Size: 1}} })},
		{name: "target on file", e: mod(file("a"), func(e *Entry) { e.Target = "x" })},
		{name: "target nul", e: &Entry{Path: "a", Kind: KindSymlink, Target: "x\x00"}},
		{name: "target long", e: &Entry{Path: "a", Kind: KindSymlink, Target: strings.Repeat("x", MaxTargetLen+1)}},
		{name: "user long", e: mod(file("a"), func(e *Entry) { e.User = strings.Repeat("x", MaxNameLen+1) })},
		{name: "group nul", e: mod(file("a"), func(e *Entry) { e.Group = "\x00" })},
		{name: "xattr value", e: mod(file("a"), func(e *Entry) { e.Xattrs = map[string][]byte{"k": make([]byte, MaxXattrValueLen+1)} })},
		{name: "xattr empty name", e: mod(file("a"), func(e *Entry) { e.Xattrs = map[string][]byte{"": nil} })},
		{name: "xattr count", e: mod(file("a"), func(e *Entry) {
			e.Xattrs = map[string][]byte{}
			for i := range MaxXattrs + 1 {
				e.Xattrs[fmt.Sprint(i)] = nil
			}
		})},
		{name: "duplicate", prev: []*Entry{dir("a")}, e: dir("a"), order: true},
		{name: "out of order", prev: []*Entry{dir("b")}, e: dir("a"), order: true},
		{name: "slash order", prev: []*Entry{dir("a b")}, e: dir("a/b"), order: true},
		{name: "child before parent", prev: []*Entry{dir("a/b")}, e: dir("a"), order: true},
		{name: "under symlink", prev: []*Entry{{Path: "a", Kind: KindSymlink, Target: "/etc"}}, e: file("a/passwd"), order: true},
		{name: "under file", prev: []*Entry{dir("d"), file("d/f")}, e: file("d/f/x"), order: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for _, p := range c.prev {
				if err := w.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			err := w.Write(c.e)
			want := ErrInvalid
			if c.order {
				want = ErrOrder
			}
			if !errors.Is(err, want) {
				t.Fatalf("Write = %v, want %v", err, want)
			}
			// The writer stays usable and the rejected entry is not in the stream.
			if err := w.Write(file("zzz", 1)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			equalEntries(t, got, append(slices.Clone(c.prev), file("zzz", 1)))
		})
	}
}

// rawStream encodes entries without any validation, with a correct end
// record, so decoder-side checks can be exercised. tail, if not nil,
// replaces the end record.
func rawStream(entries []*Entry, edit func([]byte) []byte) []byte {
	b := appendHeader(nil)
	var st state
	var keys []string
	for _, e := range entries {
		b = st.appendEntry(b, e, &keys)
	}
	if edit != nil {
		b = edit(b)
	}
	return finish(b, int64(len(entries)))
}

func finish(b []byte, count int64) []byte {
	b = appendEnd(b, count)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func rawRecord(fields ...any) []byte {
	var b []byte
	for _, f := range fields {
		switch f := f.(type) {
		case int:
			b = binary.AppendUvarint(b, uint64(f))
		case uint64:
			b = binary.AppendUvarint(b, f)
		case Kind:
			b = append(b, byte(f))
		case string:
			b = append(b, f...)
		case []byte:
			b = append(b, f...)
		}
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	mod := func(e *Entry, f func(*Entry)) *Entry { f(e); return e }
	add := func(raw []byte) func([]byte) []byte { return func(b []byte) []byte { return append(b, raw...) } }
	hdr := appendHeader(nil)
	cases := []struct {
		name string
		b    []byte
	}{
		{"dotdot", rawStream([]*Entry{file("../../etc/passwd")}, nil)},
		{"dotdot inner", rawStream([]*Entry{dir("a"), file("a/../../x")}, nil)},
		{"abs", rawStream([]*Entry{file("/etc/passwd")}, nil)},
		{"empty path", rawStream([]*Entry{file("")}, nil)},
		{"double slash", rawStream([]*Entry{file("a//b")}, nil)},
		{"nul", rawStream([]*Entry{file("a\x00b")}, nil)},
		{"duplicate", rawStream([]*Entry{file("a", 1), file("a", 1)}, nil)},
		{"out of order", rawStream([]*Entry{file("b"), file("a")}, nil)},
		{"under symlink", rawStream([]*Entry{{Path: "a", Kind: KindSymlink, Target: "/etc"}, file("a/passwd")}, nil)},
		{"size mismatch", rawStream([]*Entry{mod(file("a", 5), func(e *Entry) { e.Size = 6 })}, nil)},
		{"file size without chunks", rawStream([]*Entry{mod(file("a"), func(e *Entry) { e.Size = 6 })}, nil)},
		{"chunks on dir", rawStream([]*Entry{mod(dir("a"), func(e *Entry) { e.Chunks = []ChunkRef{{Size: 1}}; e.Size = 1 })}, nil)},
		{"too many chunks", rawStream([]*Entry{file("a", 0, 0)}, nil)},
		{"target on file", rawStream([]*Entry{mod(file("a"), func(e *Entry) { e.Target = "x" })}, nil)},
		{"target nul", rawStream([]*Entry{{Path: "a", Kind: KindSymlink, Target: "x\x00y"}}, nil)},
		{"mode", rawStream([]*Entry{mod(file("a"), func(e *Entry) { e.Mode = 0170000 })}, nil)},
		{"kind", rawStream([]*Entry{mod(file("a"), func(e *Entry) { e.Kind = 9 })}, nil)},
		{"negative size", rawStream([]*Entry{mod(dir("a"), func(e *Entry) { e.Size = -1 })}, nil)},
		{"xattr value", rawStream([]*Entry{mod(file("a"), func(e *Entry) { e.Xattrs = map[string][]byte{"k": make([]byte, MaxXattrValueLen+1)} })}, nil)},
		{"count mismatch", func() []byte {
			b, _ := Encode([]*Entry{file("a")})
			return finish(b[:len(b)-6], 2)
		}()},
		{"bad crc", func() []byte {
			b, _ := Encode([]*Entry{file("a")})
			b[len(b)-1] ^= 1
			return b
		}()},
		{"trailing data", func() []byte {
			b, _ := Encode([]*Entry{file("a")})
			return append(b, 0)
		}()},
		{"bad magic", finish([]byte("BESMAN02\x01"), 0)},
		{"bad version", finish([]byte("BESMAN01\x02"), 0)},
		{"unknown tag", finish(append(slices.Clone(hdr), 3), 0)},
		{"prefix longer than previous", rawStream([]*Entry{file("a")}, add(rawRecord(tagEntry, 5, 1, "b")))},
		{"huge path length", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, uint64(1)<<40, "a")...), 1)},
		{"huge target length", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindSymlink, fTarget, 0, 0, 0, 0, 0, 1<<20, "x")...), 1)},
		{"huge chunk count", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindFile, fChunks, 0, 1000, 0, 0, 0, 1<<30)...), 1)},
		{"chunk count above size", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindFile, fChunks, 0, 1, 0, 0, 0, 3)...), 1)},
		{"huge xattr count", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, fXattrs, 0, 0, 0, 0, 0, 1000)...), 1)},
		{"zero xattr count", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, fXattrs, 0, 0, 0, 0, 0, 0)...), 1)},
		{"xattr unsorted", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, fXattrs, 0, 0, 0, 0, 0, 2, 1, "b", 0, 1, "a", 0)...), 1)},
		{"xattr duplicate", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, fXattrs, 0, 0, 0, 0, 0, 2, 1, "a", 0, 1, "a", 0)...), 1)},
		{"unknown flags", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, 0x80, 0, 0, 0, 0, 0)...), 1)},
		{"uid overflow", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, fOwner, 0, uint64(1)<<32, 0, 0, 0, 0, 0, 0, 0)...), 1)},
		{"overlong varint", finish(append(slices.Clone(hdr), rawRecord(tagEntry, 0, 1, "a", KindDir, 0, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 0, 0, 0, 0)...), 1)},
		{"no end record", hdr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			es, err := Decode(c.b)
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("Decode = %d entries, %v; want ErrCorrupt", len(es), err)
			}
			t.Log(err)
			// Same through the streaming reader with a large buffer.
			r := NewReader(bytes.NewReader(c.b))
			for {
				_, err = r.Next()
				if err != nil {
					break
				}
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Reader: %v", err)
			}
		})
	}
}

func TestTruncation(t *testing.T) {
	es := smallSample()
	b, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		if _, err := Decode(b[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d of %d: %v", i, len(b), err)
		}
	}
}

func TestFlippedBytes(t *testing.T) {
	es := []*Entry{dir("a"), file("a/b", 10, 20), {Path: "a/c", Kind: KindSymlink, Target: "b"},
		{Path: "a/d", Kind: KindDir, Xattrs: map[string][]byte{"user.x": []byte("yz")}}, file("b", 1)}
	b, err := Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) {
		for _, mask := range []byte{0x01, 0x80, 0xff, 0x55} {
			c := slices.Clone(b)
			c[i] ^= mask
			got, err := Decode(c)
			if err == nil {
				// Allowed in principle (valid-but-different), but the CRC makes
				// it practically impossible for a single damaged byte.
				t.Errorf("byte %d ^ %#x decoded to %d entries", i, mask, len(got))
			} else if !errors.Is(err, ErrCorrupt) {
				t.Errorf("byte %d ^ %#x: %v", i, mask, err)
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	b, _ := Encode([]*Entry{file("a", 1), file("b", 2)})
	boom := errors.New("boom")
	r := NewReader(io.MultiReader(bytes.NewReader(b[:20]), iotest.ErrReader(boom)))
	var err error
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v", err)
	}
	// Data returned together with an error.
	r = NewReader(iotest.DataErrReader(bytes.NewReader(b)))
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Fatal(n)
	}
}

type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if w.n <= 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	w := NewWriter(&errWriter{n: 1})
	var err error
	for i := 0; err == nil && i < 100000; i++ {
		err = w.Write(file(fmt.Sprintf("f%08d", i), 1))
	}
	if err == nil {
		t.Fatal("no error")
	}
	if w.Close() == nil || w.Write(file("zzzz")) == nil {
		t.Fatal("error not sticky")
	}
}

func golden() []*Entry {
	return []*Entry{
		dir("etc"),
		{Path: "etc/hosts", Kind: KindFile, Mode: 0644, User: "root", Group: "root", Size: 158, MTime: 1700000000000000000,
			CTime: 1700000000500000000, Inode: 1234, Dev: 2049, Nlink: 1, Chunks: []ChunkRef{{ID: id(1), Size: 158}}},
		{Path: "etc/localtime", Kind: KindSymlink, Mode: 0777, Size: 33, Target: "/usr/share/zoneinfo/Europe/Berlin",
			MTime: 1700000001000000000, CTime: 1700000001000000000, Inode: 1235, Dev: 2049, Nlink: 1},
		dir("home"),
		dir("home/u"),
		{Path: "home/u/a b.txt", Kind: KindFile, Mode: 0600, UID: 1000, GID: 1000, User: "u", Group: "u", Size: 70000,
			MTime: 1700000002000000000, CTime: 1700000002000000000, Inode: 99, Dev: 2050, Nlink: 2,
			Chunks: []ChunkRef{{ID: id(2), Size: 65536}, {ID: id(3), Size: 4464}},
			Xattrs: map[string][]byte{"user.mime_type": []byte("text/plain"), "user.comment": []byte("hi")}},
		{Path: "run/fifo", Kind: KindFIFO, Mode: 0600},
		{Path: "run/null", Kind: KindCharDevice, Mode: 0666, Rdev: 0x103},
		{Path: "run/sda", Kind: KindDevice, Mode: 0660, Rdev: 0x800, GID: 6, Group: "disk"},
		{Path: "run/sock", Kind: KindSocket, Mode: 0755},
	}
}

func TestGolden(t *testing.T) {
	b, err := Encode(golden())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden.bin")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", b, want)
	}
	got, err := Decode(want)
	if err != nil {
		t.Fatal(err)
	}
	equalEntries(t, got, golden())
}

func FuzzDecode(f *testing.F) {
	for _, es := range [][]*Entry{nil, golden(), smallSample(), {file("a", 1)}} {
		b, err := Encode(es)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("BESMAN01\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b)
		// Also with a correct trailing checksum, so that the fuzzer reaches
		// the "decodes successfully" branch for mutated record contents.
		if len(b) >= 4 {
			c := slices.Clone(b[:len(b)-4])
			checkDecode(t, binary.LittleEndian.AppendUint32(c, crc32.Checksum(c, castagnoli)))
		}
	})
}

func checkDecode(t *testing.T, b []byte) {
	es, err := Decode(b)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("non-corrupt error: %v", err)
		}
		return
	}
	// Anything that decodes must be valid: it re-encodes and round-trips.
	b2, err := Encode(es)
	if err != nil {
		t.Fatalf("decoded manifest does not re-encode: %v", err)
	}
	es2, err := Decode(b2)
	if err != nil {
		t.Fatal(err)
	}
	equalEntries(t, es2, es)
}

// benchTree generates n entries resembling a real tree: directories of 50
// files with one or two chunks each.
func benchTree(n int) []*Entry {
	es := make([]*Entry, 0, n)
	for d := 0; len(es) < n; d++ {
		dp := fmt.Sprintf("home/user/project%03d/src%04d", d/100, d)
		if d%100 == 0 {
			es = append(es, dir(fmt.Sprintf("home/user/project%03d", d/100)))
		}
		es = append(es, dir(dp))
		for i := 0; i < 49 && len(es) < n; i++ {
			sizes := []uint32{uint32(1000 + i*37)}
			if i%5 == 0 {
				sizes = append(sizes, 4096)
			}
			e := file(fmt.Sprintf("%s/file_%04d.go", dp, i), sizes...)
			e.Inode = uint64(1000000 + len(es))
			e.MTime += int64(len(es)) * 1e9
			e.CTime = e.MTime
			es = append(es, e)
		}
	}
	return es[:n]
}

func BenchmarkWrite(b *testing.B) {
	es := benchTree(100000)
	// "home" parent dirs are omitted (allowed); check order once.
	if _, err := Encode(es); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := NewWriter(io.Discard)
		for _, e := range es {
			if err := w.Write(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

func BenchmarkNext(b *testing.B) {
	es := benchTree(100000)
	data, err := Encode(es)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data))
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	b.ReportMetric(float64(len(data))/float64(len(es)), "bytes/entry")
}
