package httpapi

import (
	"strings"
	"testing"
)

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=5-", "bytes=-5", "bytes=0-1,2-3", "bytes=9-1", "bytes=-0", "bytes=99999999999999999999-", "", "junk"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 { // math.MinInt64
			size = 0
		}
		br, ok, err := parseRange(header, size)
		switch {
		case err != nil:
			if ok {
				t.Fatalf("%q: ok with error %v", header, err)
			}
			if e, known := toS3(err); !known || e.Code != "InvalidRange" {
				t.Fatalf("%q: error %v maps to %s", header, err, e.Code)
			}
		case ok:
			if br.start < 0 || br.length < 1 || br.start > size-br.length {
				t.Fatalf("%q size %d: range %+v outside the object", header, size, br)
			}
		}
	})
}

func FuzzCompleteMultipartXML(f *testing.F) {
	f.Add(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"abc"</ETag></Part></CompleteMultipartUpload>`)
	f.Add(`<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>&quot;a&quot;</ETag><PartNumber>2</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>3</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>`)
	f.Add(`<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>x</ETag></Part>`)
	f.Add(`<?xml version="1.0"?><CompleteMultipartUpload/>`)
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, body string) {
		parts, err := parseCompleteMultipart([]byte(body))
		if err != nil {
			if e, known := toS3(err); !known || e.Status != 400 {
				t.Fatalf("error %v maps to %s %d", err, e.Code, e.Status)
			}
			return
		}
		if len(parts) < 1 || len(parts) > maxParts {
			t.Fatalf("%d parts accepted", len(parts))
		}
		for _, p := range parts {
			if p.Number < 1 || p.Number > maxParts || p.ETag == "" || strings.HasPrefix(p.ETag, `"`) || strings.HasSuffix(p.ETag, `"`) {
				t.Fatalf("part %+v accepted", p)
			}
		}
	})
}

func FuzzDeleteObjectsXML(f *testing.F) {
	f.Add(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b/c</Key><VersionId>1</VersionId></Object></Delete>`)
	f.Add(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key></Key></Object></Delete>`)
	f.Add(`<Delete><Object><Key>&lt;&amp;</Key></Object>`)
	f.Add(`<Delete><Quiet>yes</Quiet></Delete>`)
	f.Add("\x00")
	f.Fuzz(func(t *testing.T, body string) {
		_, keys, versions, err := parseDeleteObjects([]byte(body))
		if err != nil {
			if e, known := toS3(err); !known || e.Code != "MalformedXML" {
				t.Fatalf("error %v maps to %s", err, e.Code)
			}
			return
		}
		if len(keys) < 1 || len(keys) > maxDeleteKeys || len(versions) != len(keys) {
			t.Fatalf("%d keys (%d versions) accepted", len(keys), len(versions))
		}
	})
}
