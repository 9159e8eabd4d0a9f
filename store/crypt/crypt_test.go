package crypt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	zb "github.com/zeebo/blake3"
	lb "lukechampine.com/blake3"
)

// fixedMaster is a deterministic master key for golden tests.
func fixedMaster() []byte {
	m := make([]byte, MasterKeySize)
	for i := range m {
		m[i] = byte(i)
	}
	return m
}

func mustKeys(t testing.TB, m []byte) *Keys {
	t.Helper()
	k, err := DeriveKeys(m)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cheap is a low argon2 cost to keep tests (and -race) fast.
var cheap = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestIDStringParse(t *testing.T) {
	k := mustKeys(t, fixedMaster())
	id := k.ChunkID([]byte("x"))
	back, err := ParseID(id.String())
	if err != nil || back != id {
		t.Fatalf("round trip: %v %v", back, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 63), strings.Repeat("a", 66)} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestDeriveKeys(t *testing.T) {
	if _, err := DeriveKeys(make([]byte, 32)); err == nil {
		t.Fatal("short master key accepted")
	}
	m1 := fixedMaster()
	m2 := fixedMaster()
	m2[0] ^= 1
	k1, k1b, k2 := mustKeys(t, m1), mustKeys(t, m1), mustKeys(t, m2)
	data := []byte("hello chunk")
	if k1.ChunkID(data) != k1b.ChunkID(data) {
		t.Fatal("ChunkID not stable")
	}
	if k1.ChunkID(data) == k2.ChunkID(data) {
		t.Fatal("ChunkID equal under different keys")
	}
	if k1.ChunkerSeed() != k1b.ChunkerSeed() || k1.ChunkerSeed() == k2.ChunkerSeed() {
		t.Fatal("chunker seed not derived from the master key")
	}
}

// TestGolden pins the derivation and ChunkID: changing either would orphan
// every existing repository.
func TestGolden(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		ChunkIDEmpty, ChunkIDHello, ChunkIDMiB string
		ChunkerSeed                            uint64
	}
	if err := json.Unmarshal(want, &g); err != nil {
		t.Fatal(err)
	}
	k := mustKeys(t, fixedMaster())
	mib := make([]byte, 1<<20)
	for i := range mib {
		mib[i] = byte(i % 251)
	}
	tests := []struct{ name, got, want string }{
		{"empty", k.ChunkID(nil).String(), g.ChunkIDEmpty},
		{"hello", k.ChunkID([]byte("hello")).String(), g.ChunkIDHello},
		{"1MiB", k.ChunkID(mib).String(), g.ChunkIDMiB},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("ChunkID(%s) = %s, want %s", tt.name, tt.got, tt.want)
		}
	}
	if k.ChunkerSeed() != g.ChunkerSeed {
		t.Errorf("ChunkerSeed = %d, want %d", k.ChunkerSeed(), g.ChunkerSeed)
	}
}

// TestBlake3LibsAgree cross-checks the chosen library against the other one.
func TestBlake3LibsAgree(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	var h idHasher
	h.init([32]byte(key))
	for _, n := range []int{0, 1, 1023, 1024, 1025, 4096, 1 << 20} {
		data := bytes.Repeat([]byte{byte(n)}, n)
		want := lb.New(32, key)
		want.Write(data)
		z, _ := zb.NewKeyed(key)
		z.Write(data)
		got := h.sum(data)
		if !bytes.Equal(got[:], want.Sum(nil)) || !bytes.Equal(got[:], z.Sum(nil)) {
			t.Fatalf("n=%d: libraries disagree", n)
		}
	}
}

func TestChunkIDNoAllocs(t *testing.T) {
	k := mustKeys(t, fixedMaster())
	data := make([]byte, 64<<10)
	k.ChunkID(data)
	if a := testing.AllocsPerRun(100, func() { k.ChunkID(data) }); a != 0 {
		t.Fatalf("%v allocs per ChunkID", a)
	}
}

func TestSealOpen(t *testing.T) {
	k := mustKeys(t, fixedMaster())
	other := func() *Keys { m := fixedMaster(); m[5] ^= 0xff; return mustKeys(t, m) }()
	pt := bytes.Repeat([]byte("plaintext "), 1000)
	ad := []byte("chunk-id")
	sealed := k.Seal(nil, pt, ad)
	if len(sealed) != len(pt)+Overhead {
		t.Fatalf("sealed %d bytes, want %d", len(sealed), len(pt)+Overhead)
	}
	if again := k.Seal(nil, pt, ad); bytes.Equal(again[:12], sealed[:12]) {
		t.Fatal("nonce reused")
	}
	got, err := k.Open(make([]byte, 3), sealed, ad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open: %v", err)
	}
	flip := func(i int) []byte { s := bytes.Clone(sealed); s[i] ^= 1; return s }
	tests := []struct {
		name   string
		k      *Keys
		sealed []byte
		ad     []byte
	}{
		{"wrong ad", k, sealed, []byte("chunk-iD")},
		{"nil ad", k, sealed, nil},
		{"flipped nonce", k, flip(0), ad},
		{"flipped ciphertext", k, flip(100), ad},
		{"flipped tag", k, flip(len(sealed) - 1), ad},
		{"truncated", k, sealed[:len(sealed)-1], ad},
		{"too short", k, sealed[:Overhead-1], ad},
		{"empty", k, nil, ad},
		{"wrong key", other, sealed, ad},
	}
	for _, tt := range tests {
		if _, err := tt.k.Open(nil, tt.sealed, tt.ad); !errors.Is(err, ErrAuth) {
			t.Errorf("%s: got %v, want ErrAuth", tt.name, err)
		}
	}
	// Empty plaintext round trip.
	s0 := k.Seal(nil, nil, ad)
	if p0, err := k.Open(nil, s0, ad); err != nil || len(p0) != 0 || len(s0) != Overhead {
		t.Fatalf("empty plaintext: %v", err)
	}
}

func TestConcurrentKeys(t *testing.T) {
	k := mustKeys(t, fixedMaster())
	data := bytes.Repeat([]byte{1, 2, 3}, 10000)
	want := k.ChunkID(data)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if k.ChunkID(data) != want {
					t.Error("ChunkID differs under concurrency")
					return
				}
				s := k.Seal(nil, data, want[:])
				if p, err := k.Open(nil, s, want[:]); err != nil || !bytes.Equal(p, data) {
					t.Error("Seal/Open failed under concurrency")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestPassphraseEnvelope(t *testing.T) {
	ctx := context.Background()
	master, _ := NewMasterKey()
	slot, err := WrapMaster(ctx, PassphraseWithCost([]byte("correct horse"), cheap), master, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	// Persist and reload as the repository would.
	js, _ := json.Marshal(slot)
	var s Slot
	if err := json.Unmarshal(js, &s); err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapMaster(ctx, Passphrase([]byte("correct horse")), &s)
	if err != nil || !bytes.Equal(got, master) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := UnwrapMaster(ctx, Passphrase([]byte("wrong horse")), &s); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong passphrase: %v, want ErrWrongKey", err)
	}
	tamper := func(f func(*Slot)) *Slot {
		c := s
		c.Nonce, c.Wrapped, c.Params = bytes.Clone(s.Nonce), bytes.Clone(s.Wrapped), bytes.Clone(s.Params)
		f(&c)
		return &c
	}
	var pp passphraseParams
	json.Unmarshal(s.Params, &pp)
	pp.Salt[0] ^= 1
	otherSalt, _ := json.Marshal(pp)
	tests := []struct {
		name  string
		slot  *Slot
		wrong bool // want ErrWrongKey (else any error)
	}{
		{"flipped wrapped", tamper(func(c *Slot) { c.Wrapped[3] ^= 1 }), true},
		{"flipped nonce", tamper(func(c *Slot) { c.Nonce[0] ^= 1 }), true},
		{"short nonce", tamper(func(c *Slot) { c.Nonce = c.Nonce[:5] }), true},
		{"truncated wrapped", tamper(func(c *Slot) { c.Wrapped = c.Wrapped[:10] }), true},
		{"changed salt", tamper(func(c *Slot) { c.Params = otherSalt }), true},
		{"huge memory", tamper(func(c *Slot) {
			c.Params = json.RawMessage(strings.Replace(string(c.Params), `"memory":64`, `"memory":4000000000`, 1))
		}), false},
		{"bad params", tamper(func(c *Slot) { c.Params = json.RawMessage(`{`) }), false},
		{"other provider", tamper(func(c *Slot) { c.Provider = "keyfile" }), false},
		{"version", tamper(func(c *Slot) { c.Version = 2 }), false},
	}
	for _, tt := range tests {
		_, err := UnwrapMaster(ctx, Passphrase([]byte("correct horse")), tt.slot)
		if err == nil || (tt.wrong && !errors.Is(err, ErrWrongKey)) {
			t.Errorf("%s: got %v", tt.name, err)
		}
	}
	if !strings.Contains(string(s.Params), `"kdf":"argon2id"`) || !strings.Contains(string(s.Params), `"memory":64`) {
		t.Errorf("params do not record the KDF cost: %s", s.Params)
	}
	if !s.Created.Equal(time.Unix(1700000000, 0)) || s.Provider != "passphrase" || s.Version != SlotVersion {
		t.Errorf("slot metadata: %+v", s)
	}
}

func TestPassphraseDefaultCost(t *testing.T) {
	if testing.Short() {
		t.Skip("argon2 at full cost")
	}
	ctx := context.Background()
	master, _ := NewMasterKey()
	slot, err := WrapMaster(ctx, Passphrase([]byte("pw")), master, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnwrapMaster(ctx, Passphrase([]byte("pw!")), slot); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if got, err := UnwrapMaster(ctx, Passphrase([]byte("pw")), slot); err != nil || !bytes.Equal(got, master) {
		t.Fatalf("unwrap: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "repo.key")
	if err := GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}
	if err := GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
	master, _ := NewMasterKey()
	slot, err := WrapMaster(ctx, KeyFile(path), master, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapMaster(ctx, KeyFile(path), slot)
	if err != nil || !bytes.Equal(got, master) {
		t.Fatalf("unwrap: %v", err)
	}

	other := filepath.Join(dir, "other.key")
	if err := GenerateKeyFile(other); err != nil {
		t.Fatal(err)
	}
	if _, err := UnwrapMaster(ctx, KeyFile(other), slot); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key file: %v, want ErrWrongKey", err)
	}

	// Raw binary key files work too.
	raw := filepath.Join(dir, "raw.key")
	os.WriteFile(raw, bytes.Repeat([]byte{0xa5, 0x01}, 24), 0o600)
	if s, err := WrapMaster(ctx, KeyFile(raw), master, time.Now()); err != nil {
		t.Fatal(err)
	} else if _, err := UnwrapMaster(ctx, KeyFile(raw), s); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		errText string
	}{
		{"group readable", []byte(strings.Repeat("ab", 32)), 0o640, "group or others"},
		{"world readable", []byte(strings.Repeat("ab", 32)), 0o644, "group or others"},
		{"too short", []byte("short key"), 0o600, "want >= 32"},
		{"short hex", []byte(strings.Repeat("ab", 16) + "\n"), 0o600, "want >= 32"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		os.WriteFile(p, tt.content, 0o600)
		os.Chmod(p, tt.mode)
		_, err := UnwrapMaster(ctx, KeyFile(p), slot)
		if err == nil || !strings.Contains(err.Error(), tt.errText) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.errText)
		}
	}
	if _, err := UnwrapMaster(ctx, KeyFile(filepath.Join(dir, "missing")), slot); err == nil {
		t.Error("missing key file accepted")
	}
}

func FuzzOpen(f *testing.F) {
	k := mustKeys(f, fixedMaster())
	f.Add(k.Seal(nil, []byte("hello"), []byte("ad")), []byte("ad"))
	f.Add(k.Seal(nil, nil, nil), []byte(nil))
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, Overhead), []byte("x"))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		pt, err := k.Open(nil, sealed, ad)
		if err == nil {
			// Only genuine seals open; re-sealing must round trip.
			if again, err := k.Open(nil, k.Seal(nil, pt, ad), ad); err != nil || !bytes.Equal(again, pt) {
				t.Fatal("round trip of opened data failed")
			}
		} else if !errors.Is(err, ErrAuth) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// Benchmarks.

func BenchmarkChunkID(b *testing.B) {
	key := bytes.Repeat([]byte{9}, 32)
	for _, n := range []int{4 << 10, 1 << 20} {
		data := bytes.Repeat([]byte{0x5a}, n)
		name := map[int]string{4 << 10: "4KiB", 1 << 20: "1MiB"}[n]
		b.Run("chosen/"+name, func(b *testing.B) {
			k := mustKeys(b, fixedMaster())
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				k.ChunkID(data)
			}
		})
		b.Run("zeebo/"+name, func(b *testing.B) {
			h, _ := zb.NewKeyed(key)
			var out [32]byte
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				h.Reset()
				h.Write(data)
				h.Sum(out[:0])
			}
		})
		b.Run("lukechampine/"+name, func(b *testing.B) {
			h := lb.New(32, key)
			var out [32]byte
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				h.Reset()
				h.Write(data)
				h.Sum(out[:0])
			}
		})
	}
}

func BenchmarkSeal(b *testing.B) {
	k := mustKeys(b, fixedMaster())
	pt := bytes.Repeat([]byte{1}, 1<<20)
	ad := make([]byte, 32)
	dst := make([]byte, 0, len(pt)+Overhead)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		dst = k.Seal(dst, pt, ad)
	}
}

func BenchmarkOpen(b *testing.B) {
	k := mustKeys(b, fixedMaster())
	pt := bytes.Repeat([]byte{1}, 1<<20)
	ad := make([]byte, 32)
	sealed := k.Seal(nil, pt, ad)
	dst := make([]byte, 0, len(pt))
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = k.Open(dst, sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPassphraseKEK measures the default argon2id cost (reported in ms).
func BenchmarkPassphraseKEK(b *testing.B) {
	p := Passphrase([]byte("correct horse battery staple"))
	_, params, err := p.NewKEK(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := p.KEK(context.Background(), params); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/derive")
}
