package chunker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunkAll returns the chunk lengths and the concatenation check.
func chunkAll(t testing.TB, r io.Reader, p Params) [][]byte {
	t.Helper()
	c := New(r, p)
	var out [][]byte
	var buf []byte
	for {
		var err error
		buf, err = c.Next(buf)
		if err == io.EOF {
			if len(buf) != 0 {
				t.Fatalf("EOF with %d bytes", len(buf))
			}
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, bytes.Clone(buf))
	}
}

func lens(chunks [][]byte) []int {
	l := make([]int, len(chunks))
	for i, c := range chunks {
		l[i] = len(c)
	}
	return l
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		ok   bool
	}{
		{"zero", Params{}, true},
		{"zero sizes with seed", Params{Seed: 42}, true},
		{"default", DefaultParams(), true},
		{"small", Params{Min: 64, Avg: 64, Max: 64}, true},
		{"min too small", Params{Min: 32, Avg: 64, Max: 128}, false},
		{"min > avg", Params{Min: 2048, Avg: 1024, Max: 4096}, false},
		{"avg > max", Params{Min: 512, Avg: 8192, Max: 4096}, false},
		{"max too big", Params{Min: 1 << 20, Avg: 1 << 21, Max: 128 << 20}, false},
		{"max limit", Params{Min: 1 << 20, Avg: 16 << 20, Max: 64 << 20}, true},
		{"avg not pow2", Params{Min: 512, Avg: 1000, Max: 4096}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate(%+v) = %v, want ok=%v", tt.p, err, tt.ok)
			}
			if !tt.ok {
				_, nerr := New(bytes.NewReader([]byte("x")), tt.p).Next(nil)
				if nerr == nil || nerr == io.EOF {
					t.Fatalf("Next with invalid params: %v", nerr)
				}
			}
		})
	}
}

func TestGearTableDeterministic(t *testing.T) {
	a, b, c := gearTable(1), gearTable(1), gearTable(2)
	if *a != *b {
		t.Fatal("same seed, different tables")
	}
	if *a == *c {
		t.Fatal("different seeds, same table")
	}
	// splitmix64 golden value for seed 0 (first output).
	if got := gearTable(0)[0]; got != 0xe220a8397b1dcdaf {
		t.Fatalf("gear[0] = %#x", got)
	}
}

var small = Params{Min: 2 << 10, Avg: 8 << 10, Max: 32 << 10, Seed: 7}

func TestChunkSizesAndReassembly(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		p    Params
	}{
		{"empty", nil, small},
		{"one byte", []byte{1}, small},
		{"below min", randBytes(1, 1000), small},
		{"exactly min", randBytes(2, small.Min), small},
		{"exactly max", randBytes(3, small.Max), small},
		{"random 1MiB", randBytes(4, 1<<20), small},
		{"random 1MiB tiny params", randBytes(5, 1<<20), Params{Min: 64, Avg: 256, Max: 1024}},
		{"random default", randBytes(6, 9<<20), Params{}},
		{"zeros", make([]byte, 300<<10), small},
		{"min==avg==max", randBytes(8, 100<<10), Params{Min: 4096, Avg: 4096, Max: 4096}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p.withDefaults()
			chunks := chunkAll(t, bytes.NewReader(tt.data), tt.p)
			if got := bytes.Join(chunks, nil); !bytes.Equal(got, tt.data) {
				t.Fatal("chunks do not reassemble to the input")
			}
			if len(tt.data) == 0 && len(chunks) != 0 {
				t.Fatal("empty input produced chunks")
			}
			for i, c := range chunks {
				last := i == len(chunks)-1
				if len(c) == 0 || len(c) > p.Max || (!last && len(c) < p.Min) {
					t.Fatalf("chunk %d/%d has size %d outside [%d,%d]", i, len(chunks), len(c), p.Min, p.Max)
				}
			}
		})
	}
}

func TestReaderSplitIndependence(t *testing.T) {
	data := randBytes(9, 600<<10)
	want := lens(chunkAll(t, bytes.NewReader(data), small))
	if len(want) < 10 {
		t.Fatalf("only %d chunks", len(want))
	}
	readers := []struct {
		name string
		r    func() io.Reader
	}{
		{"OneByteReader", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
		{"HalfReader", func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) }},
		{"DataErrReader", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }},
		{"Nil buffers (copy-out path)", nil},
		{"MultiReader odd pieces", func() io.Reader {
			var rs []io.Reader
			for off, step := 0, 1; off < len(data); step = step*3 + 1 {
				e := min(off+step%70000, len(data))
				rs = append(rs, bytes.NewReader(data[off:e]))
				off = e
			}
			return io.MultiReader(rs...)
		}},
	}
	for _, rr := range readers {
		t.Run(rr.name, func(t *testing.T) {
			var got []int
			if rr.r == nil {
				c := New(bytes.NewReader(data), small)
				for {
					b, err := c.Next(nil)
					if err == io.EOF {
						break
					} else if err != nil {
						t.Fatal(err)
					}
					got = append(got, len(b))
				}
			} else {
				got = lens(chunkAll(t, rr.r(), small))
			}
			if len(got) != len(want) {
				t.Fatalf("%d chunks, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("chunk %d: %d bytes, want %d", i, got[i], want[i])
				}
			}
		})
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(randBytes(1, 100)), iotest.ErrReader(boom))
	c := New(r, small)
	if _, err := c.Next(nil); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if _, err := c.Next(nil); !errors.Is(err, boom) {
		t.Fatalf("error not sticky: %v", err)
	}
	c.Reset(bytes.NewReader([]byte("abc")))
	b, err := c.Next(nil)
	if err != nil || string(b) != "abc" {
		t.Fatalf("after Reset: %q %v", b, err)
	}
}

func TestSeedChangesBoundaries(t *testing.T) {
	data := randBytes(10, 1<<20)
	p1, p2 := small, small
	p2.Seed++
	a, b := lens(chunkAll(t, bytes.NewReader(data), p1)), lens(chunkAll(t, bytes.NewReader(data), p2))
	same := len(a) == len(b)
	for i := 0; same && i < len(a); i++ {
		same = a[i] == b[i]
	}
	if same {
		t.Fatal("different seeds produced identical boundaries")
	}
}

func hashes(chunks [][]byte) map[[32]byte]bool {
	m := make(map[[32]byte]bool, len(chunks))
	for _, c := range chunks {
		m[sha256.Sum256(c)] = true
	}
	return m
}

func TestInsertionStability(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB stream")
	}
	data := randBytes(11, 64<<20)
	orig := chunkAll(t, bytes.NewReader(data), Params{})
	mod := append([]byte(nil), data[:1000]...)
	mod = append(mod, "hello, inserted bytes"...)
	mod = append(mod, data[1000:]...)
	changed := chunkAll(t, bytes.NewReader(mod), Params{})
	a, b := hashes(orig), hashes(changed)
	shared := 0
	for h := range a {
		if b[h] {
			shared++
		}
	}
	frac := float64(shared) / float64(len(a))
	t.Logf("%d chunks (avg %d KiB), %d shared (%.1f%%)", len(orig), (64<<10)/len(orig), shared, 100*frac)
	if frac < 0.9 {
		t.Fatalf("only %.1f%% of chunks shared after insertion", 100*frac)
	}
}

func TestZerosCutAtMax(t *testing.T) {
	n := 64 << 20
	if testing.Short() {
		n = 16 << 20
	}
	chunks := chunkAll(t, bytes.NewReader(make([]byte, n)), Params{})
	if len(chunks) != n/(4<<20) {
		t.Fatalf("%d chunks, want %d", len(chunks), n/(4<<20))
	}
	if len(hashes(chunks)) != 1 {
		t.Fatal("all-zero chunks differ")
	}
	for i, c := range chunks {
		if len(c) != 4<<20 {
			t.Fatalf("chunk %d: %d bytes", i, len(c))
		}
	}
}

func TestNoSteadyStateAllocs(t *testing.T) {
	data := randBytes(12, 2<<20)
	rd := bytes.NewReader(data)
	c := New(rd, small)
	buf := make([]byte, 0, small.Max)
	allocs := testing.AllocsPerRun(20, func() {
		rd.Reset(data)
		c.Reset(rd)
		for {
			var err error
			buf, err = c.Next(buf)
			if err != nil {
				break
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per stream", allocs)
	}
}

func TestFixed(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		size  int
		lens  []int
		isErr bool
	}{
		{"empty", 0, 4, nil, false},
		{"exact", 8, 4, []int{4, 4}, false},
		{"remainder", 9, 4, []int{4, 4, 1}, false},
		{"short", 3, 4, []int{3}, false},
		{"bad size", 3, 0, nil, true},
	}
	for _, tt := range tests {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.DataErrReader,
		} {
			data := randBytes(13, tt.n)
			f := NewFixed(wrap(bytes.NewReader(data)), tt.size)
			var got []int
			var all []byte
			var buf []byte
			var err error
			for {
				buf, err = f.Next(buf)
				if err != nil {
					break
				}
				got = append(got, len(buf))
				all = append(all, buf...)
			}
			if tt.isErr {
				if err == io.EOF {
					t.Fatalf("%s: want error", tt.name)
				}
				continue
			}
			if err != io.EOF {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !bytes.Equal(all, data) || len(got) != len(tt.lens) {
				t.Fatalf("%s: lens %v, want %v", tt.name, got, tt.lens)
			}
			for i := range got {
				if got[i] != tt.lens[i] {
					t.Fatalf("%s: lens %v, want %v", tt.name, got, tt.lens)
				}
			}
		}
	}
}

func benchChunker(b *testing.B, data []byte, p Params) {
	rd := bytes.NewReader(data)
	c := New(rd, p)
	buf := make([]byte, 0, p.withDefaults().Max)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	chunks := 0
	for b.Loop() {
		rd.Reset(data)
		c.Reset(rd)
		for {
			var err error
			buf, err = c.Next(buf)
			if err != nil {
				break
			}
			chunks++
		}
	}
	b.ReportMetric(float64(len(data))/float64(chunks)*float64(b.N)/1024, "KiB/chunk")
}

var benchData = randBytes(99, 64<<20)

func BenchmarkChunker(b *testing.B) { benchChunker(b, benchData, Params{Seed: 1}) }

func BenchmarkChunkerZeros(b *testing.B) { benchChunker(b, make([]byte, 64<<20), Params{}) }

// BenchmarkScan measures the bare gear-hash loop (no copies) to separate the
// scan speed from the buffer management.
func BenchmarkScan(b *testing.B) {
	g := gearTable(1)
	d := benchData[:16<<20]
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		_, h, _ := scan(d, 0, ^uint64(0), g) // (practically) never matches
		if h == 42 {
			b.Fatal()
		}
	}
}

func BenchmarkFixed(b *testing.B) {
	rd := bytes.NewReader(benchData)
	f := NewFixed(rd, 1<<20)
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(int64(len(benchData)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(benchData)
		f.Reset(rd)
		for {
			var err error
			if buf, err = f.Next(buf); err != nil {
				break
			}
		}
	}
}

// TestScanMatchesSerial checks the four-lane scan against the serial
// reference, with masks dense enough to hit every resolution path.
func TestScanMatchesSerial(t *testing.T) {
	g := gearTable(3)
	data := randBytes(14, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		bitsN := 10 + r.IntN(12)
		mask := topMask(bitsN)
		start := r.IntN(1000)
		n := r.IntN(len(data) - start)
		d := data[start : start+n]
		h0 := r.Uint64()
		i1, h1, ok1 := scan1(d, h0, mask, g)
		i2, h2, ok2 := scan(d, h0, mask, g)
		// The states agree whenever the match (or the end) is at least 64
		// bytes in: shorter prefixes still carry h0's bits in the serial scan.
		if i1 != i2 || ok1 != ok2 || (i1 >= window && h1 != h2) {
			t.Fatalf("iter %d (n=%d bits=%d): serial (%d,%x,%v) vs lanes (%d,%x,%v)", iter, n, bitsN, i1, h1, ok1, i2, h2, ok2)
		}
	}
}

func BenchmarkScanSerial(b *testing.B) {
	g := gearTable(1)
	d := benchData[:16<<20]
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		if _, h, _ := scan1(d, 0, ^uint64(0), g); h == 42 {
			b.Fatal()
		}
	}
}

// TestBufferModes checks that small caller buffers (copy-out path) and large
// ones (direct path) give identical chunks, including mixed use.
func TestBufferModes(t *testing.T) {
	data := randBytes(15, 3<<20)
	want := chunkAll(t, bytes.NewReader(data), small)
	c := New(iotest.HalfReader(bytes.NewReader(data)), small)
	for i := 0; ; i++ {
		var buf []byte
		if i%3 == 1 {
			buf = make([]byte, 10, small.Max+5)
		}
		got, err := c.Next(buf)
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("%d chunks, want %d", i, len(want))
			}
			return
		}
		if err != nil || !bytes.Equal(got, want[i]) {
			t.Fatalf("chunk %d differs (err %v)", i, err)
		}
	}
}
