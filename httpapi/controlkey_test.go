package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/shale-store/shale/object"
)

// A key holding a control character (below 0x20, or 0x7F) is refused with
// InvalidArgument by every operation that would create it — PutObject,
// CopyObject's destination, CreateMultipartUpload — so no listing ever has
// to carry one in XML. Other non-ASCII keys are accepted; a control-character
// key that already exists stays readable and deletable.
func TestControlCharacterKeysRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false, nil)
	c := e.aws()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("ctl")})
	must(t, err)
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ctl"), Key: aws.String("src"), Body: strings.NewReader("x")})
	must(t, err)
	var bad []byte
	for b := 0; b < 0x20; b++ {
		bad = append(bad, byte(b))
	}
	bad = append(bad, 0x7f)
	for _, b := range bad {
		key := fmt.Sprintf("a%%%02Xb", b) // escaped path segment
		for _, op := range []struct {
			method, query string
			hdr           map[string]string
		}{
			{"PUT", "", nil},
			{"PUT", "", map[string]string{"x-amz-copy-source": "ctl/src"}},
			{"POST", "?uploads", nil},
		} {
			resp := e.do(op.method, "/ctl/"+key+op.query, nil, op.hdr, testSK)
			er := readErr(t, resp)
			if resp.StatusCode != 400 || er.Code != "InvalidArgument" || !strings.Contains(er.Message, "control character") {
				t.Fatalf("%s %s %v: %d %+v", op.method, key, op.hdr, resp.StatusCode, er)
			}
		}
	}
	if _, objects, uploads, _ := e.store.stored(); objects != 1 || uploads != 0 {
		t.Fatalf("stored %d objects, %d uploads", objects, uploads)
	}

	// Printable non-ASCII (including U+0085, a C1 control in UTF-8, which
	// XML 1.0 can carry) is accepted.
	for _, key := range []string{"ü日本", "a\u0085b", "tab-free key ~!"} {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("ctl"), Key: aws.String(key), Body: strings.NewReader("x")})
		must(t, err)
	}

	// A key stored before the rule existed can still be read and deleted.
	e.store.mu.Lock()
	e.store.objects["ctl"]["old\nkey"] = fakeObject{m: object.Info{Bucket: "ctl", Key: "old\nkey", Size: 1, ETag: "0cc175b9c0f1b6a831c399e269772661"}, data: []byte("a")}
	e.store.mu.Unlock()
	resp := e.do("GET", "/ctl/old%0Akey", nil, nil, testSK)
	if body := readAll(t, resp.Body); resp.StatusCode != 200 || string(body) != "a" {
		t.Fatalf("GET existing control-character key: %d %q", resp.StatusCode, body)
	}
	resp = e.do("DELETE", "/ctl/old%0Akey", nil, nil, testSK)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE existing control-character key: %d", resp.StatusCode)
	}
}
