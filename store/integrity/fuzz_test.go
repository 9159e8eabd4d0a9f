package integrity

import (
	"bytes"
	"testing"
)

// FuzzVerify feeds arbitrary report and signature bytes to Verify, seeded
// with real signed reports. It must never panic, and whatever it accepts
// must be consistent.
func FuzzVerify(f *testing.F) {
	rep, sig, err := Sign(fixedReport(), testKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rep, sig)
	small := &Report{Repository: "r", Appliance: "a", Generated: fixedReport().Generated}
	srep, ssig, err := Sign(small, testKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(srep, ssig)
	f.Add(rep, ssig)
	f.Add([]byte("{}"), []byte("{}"))
	f.Add([]byte{}, []byte{})
	trusted := pubOf(testKey())
	f.Fuzz(func(t *testing.T, report, signature []byte) {
		for _, key := range [][]byte{nil, trusted} {
			v, err := Verify(report, signature, key)
			if err != nil {
				continue
			}
			if v.Report == nil || v.Report.KeyID != v.KeyID || v.Trusted != (key != nil) {
				t.Fatalf("inconsistent result %+v", v)
			}
			if v.Report.Summary != summarize(v.Report.Points) {
				t.Fatalf("accepted a report whose summary does not match")
			}
		}
	})
}

// FuzzDecodeReport reaches the report parser directly, which Verify only
// runs behind a valid signature.
func FuzzDecodeReport(f *testing.F) {
	rep, _, err := Sign(fixedReport(), testKey())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rep)
	f.Add(bytes.Replace(rep, []byte(`"passed"`), []byte(`"nope"`), 1))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeReport(data)
		if err != nil {
			return
		}
		if err := r.validate(); err != nil {
			t.Fatalf("accepted an invalid report: %v", err)
		}
		// Whatever is accepted and can be signed again verifies again.
		// (Signing may fail: an accepted time in year 0 with a positive
		// offset is year -1 in UTC, which JSON cannot encode.)
		rep, sig, err := Sign(r, testKey())
		if err != nil {
			return
		}
		if _, err := Verify(rep, sig, pubOf(testKey())); err != nil {
			t.Fatalf("re-signed accepted report does not verify: %v\n%s", err, rep)
		}
	})
}
