package s3auth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// seen is what the test server observed for one request.
type seen struct {
	method, path, payload string
	body                  []byte
	sums                  map[string]string
	err                   error
}

// authServer authenticates every request with a real clock and reads the
// whole body, recording the outcome. GET answers with the last PUT body.
type authServer struct {
	a    *Authenticator
	mu   sync.Mutex
	log  []seen
	last []byte
}

func (s *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := seen{method: r.Method, path: r.URL.Path, payload: r.Header.Get("X-Amz-Content-Sha256")}
	q, err := s.a.Authenticate(r)
	if err == nil {
		rec.body, err = io.ReadAll(q.Body)
		rec.sums = q.Checksums()
	}
	rec.err = err
	s.mu.Lock()
	s.log = append(s.log, rec)
	if err == nil && r.Method == http.MethodPut {
		s.last = rec.body
	}
	last := s.last
	s.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Length", fmt.Sprint(len(last)))
		w.Write(last)
	}
}

func (s *authServer) take() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.log
	s.log = nil
	return l
}

func newAuthServer(tls bool) (*authServer, *httptest.Server) {
	s := &authServer{a: New(Config{Region: testRegion, Lookup: func(ak string) (string, bool) {
		return testSK, ak == testAK
	}})}
	if tls {
		return s, httptest.NewTLSServer(s)
	}
	return s, httptest.NewServer(s)
}

// Real aws-sdk-go-v2 S3 clients, with their default checksum behaviour,
// over plain HTTP and TLS: PutObject (whatever payload form the SDK picks),
// a presigned GET, and a wrong secret.
func TestAWSSDKClient(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			s, srv := newAuthServer(tls)
			defer srv.Close()
			client := func(secret string) *s3.Client {
				return s3.New(s3.Options{
					Region:       testRegion,
					Credentials:  awscreds.NewStaticCredentialsProvider(testAK, secret, ""),
					BaseEndpoint: aws.String(srv.URL),
					UsePathStyle: true,
					HTTPClient:   srv.Client(),
					Retryer:      aws.NopRetryer{},
					// The default of current SDKs, set explicitly because
					// s3.New without config.LoadDefaultConfig leaves it unset.
					RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			data := testData(200_000)
			for _, key := range trickyKeys {
				if strings.Contains(key, "./") {
					continue // the SDK cleans dot segments on its own side
				}
				_, err := client(testSK).PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String("bkt"), Key: aws.String(key), Body: bytes.NewReader(data),
				})
				if err != nil {
					t.Fatalf("PutObject %q: %v", key, err)
				}
				for _, r := range s.take() {
					if r.err != nil || !bytes.Equal(r.body, data) {
						t.Fatalf("PutObject %q (%s): %d bytes, %v", key, r.payload, len(r.body), r.err)
					}
					t.Logf("%s %s payload=%s checksums=%v", r.method, r.path, r.payload, r.sums)
					if tls && r.payload != streamingUnsignedTrailer || r.sums["CRC32"] == "" {
						t.Errorf("SDK over tls=%v sent %s with checksums %v", tls, r.payload, r.sums)
					}
				}
			}

			pre, err := s3.NewPresignClient(client(testSK)).PresignGetObject(ctx, &s3.GetObjectInput{
				Bucket: aws.String("bkt"), Key: aws.String("a b/c d"),
			}, s3.WithPresignExpires(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, pre.Method, pre.URL, nil)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("presigned GET: %s %v", resp.Status, s.take())
			}
			s.take()

			_, err = client("wrong").PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String("bkt"), Key: aws.String("k"), Body: bytes.NewReader(data),
			})
			if err == nil {
				t.Fatal("PutObject with a wrong secret succeeded")
			}
			for _, r := range s.take() {
				wantErr(t, r.err, ErrSignatureMismatch)
			}
		})
	}
}

// minio-go signs PUTs over plain HTTP with STREAMING-AWS4-HMAC-SHA256-PAYLOAD
// (or its -TRAILER form); over TLS it uses other forms.
func TestMinioClient(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tls), func(t *testing.T) {
			s, srv := newAuthServer(tls)
			defer srv.Close()
			mc, err := minio.New(strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://"), &minio.Options{
				Creds:     miniocreds.NewStaticV4(testAK, testSK, ""),
				Secure:    tls,
				Region:    testRegion,
				Transport: srv.Client().Transport,
				// Lets minio-go send checksums as aws-chunked trailers.
				TrailingHeaders: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			data := testData(300_000)
			forms := map[string]bool{}
			defer func() {
				want := []string{streamingPayload, streamingPayloadTrailer}
				if tls {
					want = []string{streamingUnsignedTrailer}
				}
				for _, f := range want {
					if !forms[f] {
						t.Errorf("minio-go never sent %s (saw %v)", f, forms)
					}
				}
			}()
			for _, opts := range []minio.PutObjectOptions{{}, {SendContentMd5: true}, {Checksum: minio.ChecksumCRC32C}, {Checksum: minio.ChecksumSHA256}, {Checksum: minio.ChecksumCRC64NVME}} {
				_, err := mc.PutObject(ctx, "bkt", "dir/a b+c=d~e", bytes.NewReader(data), int64(len(data)), opts)
				if err != nil {
					for _, r := range s.take() {
						t.Logf("server saw %s %s payload=%s: %v", r.method, r.path, r.payload, r.err)
					}
					t.Fatalf("PutObject checksum=%v md5=%v: %v", opts.Checksum, opts.SendContentMd5, err)
				}
				for _, r := range s.take() {
					if r.method != http.MethodPut {
						continue
					}
					if r.err != nil || !bytes.Equal(r.body, data) {
						t.Fatalf("PutObject (%s): %d bytes, %v", r.payload, len(r.body), r.err)
					}
					t.Logf("%s %s payload=%s checksums=%v", r.method, r.path, r.payload, r.sums)
					forms[r.payload] = true
					if opts.Checksum.IsSet() && r.sums[opts.Checksum.String()] == "" {
						t.Errorf("%s: checksum %s not verified: %v", r.payload, opts.Checksum, r.sums)
					}
				}
			}
		})
	}
}
