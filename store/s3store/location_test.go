package s3store

import (
	"errors"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		in   string
		want Location
	}{
		{"s3:http://127.0.0.1:9000/bucket", Location{Endpoint: "127.0.0.1:9000", Bucket: "bucket"}},
		{"s3:http://127.0.0.1:9000/bucket/", Location{Endpoint: "127.0.0.1:9000", Bucket: "bucket"}},
		{"s3:https://s3.example.com/my-bucket/prefix", Location{Endpoint: "s3.example.com", Secure: true, Bucket: "my-bucket", Prefix: "prefix"}},
		{"s3:https://s3.example.com:8443/b.c-d/site1/bes/repo/", Location{Endpoint: "s3.example.com:8443", Secure: true, Bucket: "b.c-d", Prefix: "site1/bes/repo"}},
		{"s3:http://[::1]:7070/abc/p", Location{Endpoint: "[::1]:7070", Bucket: "abc", Prefix: "p"}},
		{"s3:http://minio_1:9000/a1b/x.y/z-", Location{Endpoint: "minio_1:9000", Bucket: "a1b", Prefix: "x.y/z-"}},
		{"s3:http://localhost/" + strings.Repeat("b", 63), Location{Endpoint: "localhost", Bucket: strings.Repeat("b", 63)}},
	}
	for _, tc := range good {
		got, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}

	bad := []struct{ in, why string }{
		{"", "s3:"},
		{"http://127.0.0.1/bucket", "s3:"},
		{"s3:ftp://127.0.0.1/bucket", "scheme"},
		{"s3:127.0.0.1/bucket", "scheme"},
		{"s3:HTTP://127.0.0.1/bucket", "scheme"},
		{"s3:http:///bucket", "host is empty"},
		{"s3:http://:9000/bucket", "host is empty"},
		{"s3:http://127.0.0.1:9000", "bucket name is missing"},
		{"s3:http://127.0.0.1:9000/", "bucket name is missing"},
		{"s3:http://127.0.0.1:0/bucket", "bad port"},
		{"s3:http://127.0.0.1:70000/bucket", "bad port"},
		{"s3:http://127.0.0.1:/bucket", "bad port"},
		{"s3:http://127.0.0.1:x/bucket", "not a valid URL"},
		{"s3:http://-bad-.example/bucket", "bad host name"},
		{"s3:http://host/Bucket", "lowercase"},
		{"s3:http://host/ab", "3 to 63"},
		{"s3:http://host/" + strings.Repeat("b", 64), "3 to 63"},
		{"s3:http://host/bu_cket", "lowercase"},
		{"s3:http://host/-bucket", "begin and end"},
		{"s3:http://host/bucket.", "begin and end"},
		{"s3:http://host/bu..cket", "adjacent"},
		{"s3:http://host/192.168.1.1", "IP address"},
		{"s3:http://host/xn--bucket", "must not start"},
		{"s3:http://host/bucket-s3alias", "must not end"},
		{"s3:http://host/bucket/../x", `".."`},
		{"s3:http://host/bucket/a/./b", `"."`},
		{"s3:http://host/bucket/..", `".."`},
		{"s3:http://host/../bucket", `".."`},
		{"s3:http://host/bucket//p", "double slash"},
		{"s3:http://host/bucket/p%2Fq", "percent"},
		{"s3:http://host/bucket/a b", "spaces"},
		{"s3:http://host/bucket/a\\b", "backslash"},
		{"s3:http://host/bucket?x=1", "query"},
		{"s3:http://host/bucket#frag", "fragment"},
		{"s3:http://user:hunter2@host/bucket", "credentials"},
		{"s3:http://host/bucket/" + strings.Repeat("p", maxPrefixLen+1), "prefix longer"},
	}
	for _, tc := range bad {
		_, err := ParseURL(tc.in)
		if err == nil {
			t.Errorf("ParseURL(%q) succeeded, want error about %s", tc.in, tc.why)
			continue
		}
		if !errors.Is(err, ErrBadLocation) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadLocation", tc.in, err)
		}
		if !strings.Contains(err.Error(), tc.why) {
			t.Errorf("ParseURL(%q) = %q, want it to mention %q", tc.in, err, tc.why)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseURL(%q) error leaks the password: %q", tc.in, err)
		}
	}
}

func TestLocationStringRoundTrip(t *testing.T) {
	for _, s := range []string{
		"s3:http://127.0.0.1:9000/bucket",
		"s3:https://s3.example.com/my-bucket/a/b/c",
		"s3:http://[::1]:7070/abc/p",
	} {
		loc, err := ParseURL(s)
		if err != nil {
			t.Fatal(err)
		}
		if loc.String() != s {
			t.Errorf("String() = %q, want %q", loc.String(), s)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"s3:http://127.0.0.1:9000/bucket",
		"s3:https://s3.example.com:8443/my.bucket/a/b/",
		"s3:http://[::1]:7070/abc/p",
		"s3:http://host/bucket/../x",
		"s3:http://user:pw@host/bucket",
		"s3:http://host:99999/b",
		"s3:http:///",
		"s3:",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		loc, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrBadLocation) {
				t.Fatalf("error %v does not wrap ErrBadLocation", err)
			}
			return
		}
		if loc.Endpoint == "" {
			t.Fatalf("%q: empty endpoint", s)
		}
		if err := checkBucketName(loc.Bucket); err != nil {
			t.Fatalf("%q: accepted bad bucket: %v", s, err)
		}
		if loc.Prefix != "" {
			for _, seg := range strings.Split(loc.Prefix, "/") {
				if seg == "" || seg == "." || seg == ".." {
					t.Fatalf("%q: prefix %q has segment %q", s, loc.Prefix, seg)
				}
			}
		}
		again, err := ParseURL(loc.String())
		if err != nil || again != loc {
			t.Fatalf("%q: round trip via %q gave %+v, %v; want %+v", s, loc.String(), again, err, loc)
		}
	})
}
