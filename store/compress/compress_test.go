package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var words = strings.Fields(`the quick brown fox jumps over lazy dog backup
	chunk repository snapshot index manifest pack error warning info debug
	file directory size mode owner group time created modified accessed
	hello world lorem ipsum dolor sit amet consectetur adipiscing elit`)

// textLike returns n bytes of log-like text made of repeated words.
func textLike(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	var b bytes.Buffer
	for line := 0; b.Len() < n; line++ {
		b.WriteString(time.Unix(1700000000+int64(line), 0).UTC().Format(time.RFC3339))
		for i := 0; i < 8+r.IntN(8); i++ {
			b.WriteByte(' ')
			b.WriteString(words[r.IntN(len(words))])
		}
		b.WriteString(" id=")
		b.WriteString(strings.Repeat("x", r.IntN(4)))
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}

func TestParseAlgo(t *testing.T) {
	tests := []struct {
		in   string
		want Algo
		ok   bool
	}{
		{"zstd", Zstd, true}, {"ZSTD", Zstd, true}, {"lz4", LZ4, true}, {"Lz4", LZ4, true},
		{"none", None, true}, {" None ", None, true}, {"gzip", None, false}, {"", None, false},
	}
	for _, tt := range tests {
		got, err := ParseAlgo(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseAlgo(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok {
			if back, _ := ParseAlgo(got.String()); back != got {
				t.Errorf("String round trip of %v", got)
			}
		}
	}
	if s := Algo(9).String(); s != "algo(9)" {
		t.Errorf("Algo(9).String() = %q", s)
	}
}

func TestRoundTrip(t *testing.T) {
	half := append(randBytes(3, 512<<10), make([]byte, 512<<10)...)
	tests := []struct {
		name     string
		data     []byte
		wantComp bool // expect compression to be used
	}{
		{"empty", nil, false},
		{"one byte", []byte{7}, false},
		{"small text", textLike(1, 3000), true},
		{"text 1MiB", textLike(2, 1<<20), true},
		{"text 4MiB", textLike(3, 4<<20), true},
		{"zeros 4MiB", make([]byte, 4<<20), true},
		{"random 1MiB", randBytes(4, 1<<20), false},
		{"random small", randBytes(5, 10<<10), false},
		{"half random half zeros", half, true},
	}
	c := New()
	for _, tt := range tests {
		for _, a := range []Algo{None, Zstd, LZ4} {
			t.Run(tt.name+"/"+a.String(), func(t *testing.T) {
				comp, used := c.Compress(nil, tt.data, a)
				if a == None || !tt.wantComp {
					if used != None || !bytes.Equal(comp, tt.data) {
						t.Fatalf("want raw, got %v (%d bytes)", used, len(comp))
					}
				} else {
					if used != a {
						t.Fatalf("used %v, want %v", used, a)
					}
					if len(comp) > len(tt.data)*97/100 {
						t.Fatalf("%d -> %d bytes", len(tt.data), len(comp))
					}
				}
				got, err := c.Decompress(make([]byte, 5), comp, used, len(tt.data))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, tt.data) {
					t.Fatal("round trip mismatch")
				}
			})
		}
	}
}

func TestDecompressErrors(t *testing.T) {
	c := New()
	data := textLike(6, 200<<10)
	zs, _ := c.Compress(nil, data, Zstd)
	l4, _ := c.Compress(nil, data, LZ4)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x40
		return b
	}
	tests := []struct {
		name   string
		src    []byte
		a      Algo
		rawLen int
	}{
		{"zstd short size", zs, Zstd, len(data) - 1},
		{"zstd long size", zs, Zstd, len(data) + 1},
		{"zstd truncated", zs[:len(zs)/2], Zstd, len(data)},
		{"zstd garbage", randBytes(7, 1000), Zstd, 1000},
		{"zstd empty src", nil, Zstd, 10},
		{"lz4 short size", l4, LZ4, len(data) - 1},
		{"lz4 long size", l4, LZ4, len(data) + 1},
		{"lz4 truncated", l4[:len(l4)/2], LZ4, len(data)},
		{"lz4 garbage", randBytes(8, 1000), LZ4, 5000},
		{"none wrong size", data, None, len(data) + 1},
		{"raw len too big", zs, Zstd, MaxRawLen + 1},
		{"raw len negative", zs, Zstd, -1},
		{"unknown algo", data, Algo(7), len(data)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Decompress(nil, tt.src, tt.a, tt.rawLen)
			if err == nil && bytes.Equal(got, data) {
				t.Fatal("corruption not detected")
			}
			if err == nil {
				t.Fatalf("no error (got %d bytes)", len(got))
			}
		})
	}
	// A flipped bit inside a frame without checksum may decode to other
	// bytes (the store's AES-GCM tag and ID check catch that); it must
	// never panic or give other than rawLen bytes.
	for i := 0; i < len(zs); i += 97 {
		got, err := c.Decompress(nil, flip(zs, i), Zstd, len(data))
		if err == nil && len(got) != len(data) {
			t.Fatalf("flip at %d: %d bytes", i, len(got))
		}
	}
	if _, err := c.Decompress(nil, zs, Zstd, len(data)-1); !errors.Is(err, ErrSize) {
		t.Errorf("wrong size: %v, want ErrSize", err)
	}
}

func TestEntropySkip(t *testing.T) {
	c := New()
	if !c.worthCompressing(make([]byte, 1<<20)) {
		t.Error("zeros judged incompressible")
	}
	if !c.worthCompressing(textLike(9, 1<<20)) {
		t.Error("text judged incompressible")
	}
	if c.worthCompressing(randBytes(10, 1<<20)) {
		t.Error("random judged compressible")
	}
	// Random data with a compressible tail must still be tried.
	mixed := append(randBytes(11, 900<<10), make([]byte, 124<<10)...)
	if !c.worthCompressing(mixed) {
		t.Error("mixed judged incompressible")
	}
	// A random block repeated has random-looking samples but compresses.
	blk := randBytes(15, 4096)
	var rep []byte
	for len(rep) < 1<<20 {
		rep = append(rep, blk...)
	}
	if !c.worthCompressing(rep) {
		t.Error("a repeated random block judged incompressible")
	}
	if out, a := c.Compress(nil, rep, Zstd); a != Zstd || len(out) > len(rep)/50 {
		t.Errorf("repeated random block: %v, %d bytes", a, len(out))
	}
	if e := entropy(randBytes(12, 4096)); e < 7.9 || e > 8 {
		t.Errorf("random sample entropy %.3f", e)
	}
}

func TestConcurrent(t *testing.T) {
	c := New()
	inputs := [][]byte{textLike(13, 300<<10), make([]byte, 100<<10), randBytes(14, 200<<10)}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cbuf, dbuf []byte
			for i := 0; i < 20; i++ {
				in := inputs[(g+i)%len(inputs)]
				var a Algo
				cbuf, a = c.Compress(cbuf, in, []Algo{Zstd, LZ4}[i%2])
				var err error
				dbuf, err = c.Decompress(dbuf, cbuf, a, len(in))
				if err != nil || !bytes.Equal(dbuf, in) {
					t.Errorf("round trip failed: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func FuzzDecompress(f *testing.F) {
	c := New()
	for _, d := range [][]byte{nil, []byte("hello hello hello hello"), textLike(15, 5000), make([]byte, 3000)} {
		for _, a := range []Algo{Zstd, LZ4} {
			comp, used := c.Compress(nil, d, a)
			f.Add(comp, uint8(used), len(d))
			f.Add(comp, uint8(a), len(d)+3)
		}
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0}, uint8(Zstd), 100)
	f.Add([]byte{0xff, 0xff, 0xff}, uint8(LZ4), 1<<20)
	f.Fuzz(func(t *testing.T, src []byte, a uint8, rawLen int) {
		if rawLen > 4<<20 {
			rawLen %= 4 << 20 // keep the fuzzer's memory use modest
		}
		out, err := c.Decompress(nil, src, Algo(a), rawLen)
		if err == nil && len(out) != rawLen {
			t.Fatalf("no error but %d bytes, want %d", len(out), rawLen)
		}
		if cap(out) > max(rawLen, 0) && err == nil {
			t.Fatalf("output capacity %d beyond rawLen %d", cap(out), rawLen)
		}
	})
}

// Benchmarks. SetBytes counts uncompressed bytes.

func benchCompress(b *testing.B, c *Codec, data []byte, a Algo) {
	var dst []byte
	var used Algo
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		dst, used = c.Compress(dst, data, a)
	}
	b.ReportMetric(float64(len(dst))/float64(len(data))*100, "%size")
	if used != a && used != None {
		b.Fatal(used)
	}
}

var (
	benchText   = textLike(20, 1<<20)
	benchRandom = randBytes(21, 1<<20)
	benchZeros  = make([]byte, 1<<20)
)

func BenchmarkCompress(b *testing.B) {
	c := New()
	for _, a := range []Algo{Zstd, LZ4} {
		for _, d := range []struct {
			name string
			data []byte
		}{{"text", benchText}, {"random", benchRandom}, {"zeros", benchZeros}} {
			b.Run(a.String()+"/"+d.name, func(b *testing.B) { benchCompress(b, c, d.data, a) })
		}
	}
}

// BenchmarkRandomNoSkip shows what the entropy sampling saves.
func BenchmarkRandomNoSkip(b *testing.B) {
	e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
	var dst []byte
	b.SetBytes(int64(len(benchRandom)))
	for b.Loop() {
		dst = e.EncodeAll(benchRandom, dst[:0])
	}
}

// BenchmarkZstdLevels compares libzstd levels 1 and 3 (what Codec uses)
// with the pure-Go klauspost encoder at SpeedFastest and SpeedDefault (the
// previous choice, and restic's) on text.
func BenchmarkZstdLevels(b *testing.B) { benchLevels(b, textLike(22, 4<<20)) }

func benchLevels(b *testing.B, data []byte) {
	for _, l := range []int{1, 3} {
		b.Run(fmt.Sprintf("libzstd-%d", l), func(b *testing.B) { benchCompress(b, New(WithZstdLevel(l)), data, Zstd) })
	}
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		b.Run("klauspost-"+l.String(), func(b *testing.B) {
			e, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(l), zstd.WithEncoderCRC(false))
			var dst []byte
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				dst = e.EncodeAll(data, dst[:0])
			}
			b.ReportMetric(float64(len(dst))/float64(len(data))*100, "%size")
		})
	}
}

func BenchmarkDecompress(b *testing.B) {
	c := New()
	for _, a := range []Algo{Zstd, LZ4} {
		for _, d := range []struct {
			name string
			data []byte
		}{{"text", benchText}, {"zeros", benchZeros}} {
			comp, used := c.Compress(nil, d.data, a)
			b.Run(a.String()+"/"+d.name, func(b *testing.B) {
				dst := make([]byte, len(d.data))
				b.SetBytes(int64(len(d.data)))
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if dst, err = c.Decompress(dst, comp, used, len(d.data)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// goSource returns about n bytes of real text: Go standard library sources.
func goSource(b *testing.B, n int) []byte {
	var buf []byte
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Skip("no go toolchain for real text")
	}
	root := filepath.Join(strings.TrimSpace(string(goroot)), "src", "net")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && len(buf) < n && strings.HasSuffix(p, ".go") {
			data, _ := os.ReadFile(p)
			buf = append(buf, data...)
		}
		return nil
	})
	if len(buf) < n {
		b.Skipf("only %d bytes of Go source under %s", len(buf), root)
	}
	return buf[:n]
}

// BenchmarkZstdLevelsGoSource repeats the level comparison on real text.
func BenchmarkZstdLevelsGoSource(b *testing.B) {
	data := goSource(b, 3<<20)
	benchLevels(b, data)
	b.Run("lz4", func(b *testing.B) { benchCompress(b, New(), data, LZ4) })
}
