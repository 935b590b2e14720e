package httpapi

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shale-store/shale/object"
)

// fakeStore is an in-memory ObjectService following the object layer's
// contract (object/api.go, object/service.go) closely enough for protocol
// tests.
type fakeStore struct {
	mu      sync.Mutex
	now     func() time.Time
	seq     int
	buckets map[string]object.Bucket
	objects map[string]map[string]fakeObject // bucket → key
	uploads map[string]*fakeUpload           // upload id →

	// Test hooks, set before use.
	readErr  error         // ReadObject fails with it after readFail bytes
	readFail int64         // bytes written before readErr
	putGate  chan struct{} // when set, PutObject waits for it to close…
	putEnter chan struct{} // …after sending on this (if set)
}

type fakeObject struct {
	m    object.Info
	data []byte
}

type fakeUpload struct {
	u     object.Upload
	parts map[int]fakePart
}

type fakePart struct {
	p    object.Part
	data []byte
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		now:     func() time.Time { return time.Now().UTC() },
		buckets: map[string]object.Bucket{},
		objects: map[string]map[string]fakeObject{},
		uploads: map[string]*fakeUpload{},
	}
}

// stored counts buckets, objects, uploads and parts: the "nothing stored"
// check of the bad-input tests.
func (f *fakeStore) stored() (buckets, objects, uploads, parts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, objs := range f.objects {
		objects += len(objs)
	}
	for _, u := range f.uploads {
		parts += len(u.parts)
	}
	return len(f.buckets), objects, len(f.uploads), parts
}

func (f *fakeStore) CreateBucket(ctx context.Context, name, region string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[name]; ok {
		return fmt.Errorf("create bucket %s: %w", name, object.ErrBucketExists)
	}
	f.buckets[name] = object.Bucket{Name: name, Created: f.now(), Region: region}
	f.objects[name] = map[string]fakeObject{}
	return nil
}

func (f *fakeStore) HeadBucket(ctx context.Context, name string) (object.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.buckets[name]
	if !ok {
		return object.Bucket{}, fmt.Errorf("head bucket %s: %w", name, object.ErrNoSuchBucket)
	}
	return b, nil
}

func (f *fakeStore) DeleteBucket(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[name]; !ok {
		return fmt.Errorf("delete bucket %s: %w", name, object.ErrNoSuchBucket)
	}
	if len(f.objects[name]) > 0 {
		return fmt.Errorf("delete bucket %s: %w", name, object.ErrBucketNotEmpty)
	}
	delete(f.buckets, name)
	delete(f.objects, name)
	return nil
}

func (f *fakeStore) ListBuckets(ctx context.Context) ([]object.Bucket, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var bs []object.Bucket
	for _, b := range f.buckets {
		bs = append(bs, b)
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Name < bs[j].Name })
	return bs, nil
}

// readBody consumes in.Body as the object layer does: to EOF, checking the
// declared size and Content-MD5, before anything is committed.
func readBody(in object.PutInput) ([]byte, string, error) {
	data, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, "", fmt.Errorf("read body of %s/%s: %w", in.Bucket, in.Key, err)
	}
	if in.Size >= 0 && int64(len(data)) != in.Size {
		return nil, "", fmt.Errorf("put %s/%s: %w", in.Bucket, in.Key, object.ErrIncompleteBody)
	}
	sum := md5.Sum(data)
	if in.ExpectMD5 != nil && !bytes.Equal(in.ExpectMD5, sum[:]) {
		return nil, "", fmt.Errorf("put %s/%s: %w", in.Bucket, in.Key, object.ErrBadDigest)
	}
	return data, hex.EncodeToString(sum[:]), nil
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (f *fakeStore) commit(in object.PutInput, data []byte, etag string, parts []int64) (object.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[in.Bucket]
	if !ok {
		return object.Info{}, fmt.Errorf("commit %s/%s: %w", in.Bucket, in.Key, object.ErrNoSuchBucket)
	}
	if err := fakePrecondition(in.If, objs, in.Key); err != nil {
		return object.Info{}, fmt.Errorf("commit %s/%s: %w", in.Bucket, in.Key, err)
	}
	f.seq++
	m := object.Info{
		Bucket: in.Bucket, Key: in.Key, VersionID: fmt.Sprintf("v%d", f.seq),
		Size: int64(len(data)), ETag: etag, ContentType: in.ContentType, Headers: copyMap(in.Headers),
		UserMeta: copyMap(in.UserMeta), Checksums: copyMap(in.Checksums), Created: f.now(), PartSizes: parts,
	}
	objs[in.Key] = fakeObject{m: m, data: data}
	return m, nil
}

// fakePrecondition decides p against the key's current object, as the
// object layer's conditional commit does.
func fakePrecondition(p object.Precondition, objs map[string]fakeObject, key string) error {
	cur, ok := objs[key]
	switch {
	case p.Absent && ok:
		return object.ErrPreconditionFailed
	case p.ETag != "" && !ok:
		return object.ErrNoSuchKey
	case p.ETag != "" && p.ETag != cur.m.ETag:
		return object.ErrPreconditionFailed
	}
	return nil
}

func (f *fakeStore) PutObject(ctx context.Context, in object.PutInput) (object.Info, error) {
	if f.putEnter != nil {
		f.putEnter <- struct{}{}
	}
	if f.putGate != nil {
		<-f.putGate
	}
	data, etag, err := readBody(in)
	if err != nil {
		return object.Info{}, err
	}
	return f.commit(in, data, etag, []int64{int64(len(data))})
}

func (f *fakeStore) get(bucket, key string) (fakeObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[bucket]
	if !ok {
		return fakeObject{}, fmt.Errorf("get %s/%s: %w", bucket, key, object.ErrNoSuchBucket)
	}
	o, ok := objs[key]
	if !ok {
		return fakeObject{}, fmt.Errorf("get %s/%s: %w", bucket, key, object.ErrNoSuchKey)
	}
	return o, nil
}

func (f *fakeStore) HeadObject(ctx context.Context, bucket, key string) (object.Info, error) {
	o, err := f.get(bucket, key)
	return o.m, err
}

func (f *fakeStore) ReadObject(ctx context.Context, w io.Writer, m object.Info, off, length int64) error {
	o, err := f.get(m.Bucket, m.Key)
	if err != nil {
		return err
	}
	if o.m.VersionID != m.VersionID {
		return fmt.Errorf("read %s/%s: %w", m.Bucket, m.Key, object.ErrNoSuchKey)
	}
	if off < 0 || length < 0 || off+length > int64(len(o.data)) {
		return fmt.Errorf("read %s/%s: range %d+%d out of %d", m.Bucket, m.Key, off, length, len(o.data))
	}
	chunk := o.data[off : off+length]
	if f.readErr != nil {
		n := min(f.readFail, int64(len(chunk)))
		if n > 0 {
			if _, err := w.Write(chunk[:n]); err != nil {
				return err
			}
		}
		return f.readErr
	}
	_, err = w.Write(chunk)
	return err
}

func (f *fakeStore) DeleteObject(ctx context.Context, bucket, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[bucket]
	if !ok {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, object.ErrNoSuchBucket)
	}
	delete(objs, key)
	return nil
}

func (f *fakeStore) ListObjects(ctx context.Context, bucket string, opts object.ListOptions) (object.ListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	objs, ok := f.objects[bucket]
	if !ok {
		return object.ListResult{}, fmt.Errorf("list %s: %w", bucket, object.ErrNoSuchBucket)
	}
	if opts.Limit < 1 || opts.Limit > 1000 {
		return object.ListResult{}, fmt.Errorf("list %s: limit %d: %w", bucket, opts.Limit, object.ErrInvalidArgument)
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var res object.ListResult
	n := 0
	for _, k := range keys {
		if !strings.HasPrefix(k, opts.Prefix) || k <= opts.After {
			continue
		}
		cp := ""
		if opts.Delimiter != "" {
			if i := strings.Index(k[len(opts.Prefix):], opts.Delimiter); i >= 0 {
				cp = k[:len(opts.Prefix)+i+len(opts.Delimiter)]
			}
		}
		if cp != "" && (cp == opts.After || (len(res.CommonPrefixes) > 0 && res.CommonPrefixes[len(res.CommonPrefixes)-1] == cp)) {
			continue
		}
		if n == opts.Limit {
			res.Truncated = true
			break
		}
		n++
		if cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
			res.NextAfter = cp
			continue
		}
		o := objs[k]
		res.Objects = append(res.Objects, object.ObjectEntry{Key: k, Size: o.m.Size, ETag: o.m.ETag, Created: o.m.Created})
		res.NextAfter = k
	}
	if !res.Truncated {
		res.NextAfter = ""
	}
	return res, nil
}

func (f *fakeStore) CopyObject(ctx context.Context, src object.Info, in object.PutInput) (object.Info, error) {
	o, err := f.get(src.Bucket, src.Key)
	if err != nil {
		return object.Info{}, err
	}
	data := append([]byte(nil), o.data...)
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:])
	return f.commit(in, data, etag, []int64{int64(len(data))})
}

func (f *fakeStore) CreateUpload(ctx context.Context, u object.Upload) (object.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.buckets[u.Bucket]; !ok {
		return object.Upload{}, fmt.Errorf("create upload %s/%s: %w", u.Bucket, u.Key, object.ErrNoSuchBucket)
	}
	f.seq++
	u.ID = fmt.Sprintf("upload-%04d", f.seq)
	u.Created = f.now()
	f.uploads[u.ID] = &fakeUpload{u: u, parts: map[int]fakePart{}}
	return u, nil
}

// upload returns the upload; the caller holds f.mu.
func (f *fakeStore) upload(bucket, key, id string) (*fakeUpload, error) {
	up, ok := f.uploads[id]
	if !ok || up.u.Bucket != bucket || up.u.Key != key {
		return nil, fmt.Errorf("upload %s of %s/%s: %w", id, bucket, key, object.ErrNoSuchUpload)
	}
	return up, nil
}

func (f *fakeStore) GetUpload(ctx context.Context, bucket, key, uploadID string) (object.Upload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	up, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return object.Upload{}, err
	}
	return up.u, nil
}

func (f *fakeStore) putPart(bucket, key, uploadID string, number int, data []byte, etag string, sums map[string]string) (object.Part, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	up, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return object.Part{}, err
	}
	p := object.Part{Number: number, Size: int64(len(data)), ETag: etag, Checksums: copyMap(sums), Created: f.now()}
	up.parts[number] = fakePart{p: p, data: data}
	return p, nil
}

func (f *fakeStore) UploadPart(ctx context.Context, uploadID string, number int, in object.PutInput) (object.Part, error) {
	if _, err := f.GetUpload(ctx, in.Bucket, in.Key, uploadID); err != nil {
		return object.Part{}, err
	}
	data, etag, err := readBody(in)
	if err != nil {
		return object.Part{}, err
	}
	return f.putPart(in.Bucket, in.Key, uploadID, number, data, etag, in.Checksums)
}

func (f *fakeStore) UploadPartCopy(ctx context.Context, uploadID string, number int, bucket, key string, src object.Info, off, length int64) (object.Part, error) {
	o, err := f.get(src.Bucket, src.Key)
	if err != nil {
		return object.Part{}, err
	}
	data := append([]byte(nil), o.data[off:off+length]...)
	sum := md5.Sum(data)
	return f.putPart(bucket, key, uploadID, number, data, hex.EncodeToString(sum[:]), nil)
}

func (f *fakeStore) ListParts(ctx context.Context, bucket, key, uploadID string) ([]object.Part, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	up, err := f.upload(bucket, key, uploadID)
	if err != nil {
		return nil, err
	}
	var ps []object.Part
	for _, p := range up.parts {
		ps = append(ps, p.p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Number < ps[j].Number })
	return ps, nil
}

// ListUploads pages as the object layer does, naively: every upload in
// S3's order, then the markers, the delimiter and the limit.
func (f *fakeStore) ListUploads(ctx context.Context, bucket string, opts object.UploadListOptions) (object.UploadListResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	res := object.UploadListResult{}
	if _, ok := f.buckets[bucket]; !ok {
		return res, fmt.Errorf("list uploads %s: %w", bucket, object.ErrNoSuchBucket)
	}
	var us []object.Upload
	for _, up := range f.uploads {
		if up.u.Bucket == bucket && strings.HasPrefix(up.u.Key, opts.Prefix) {
			us = append(us, up.u)
		}
	}
	sort.Slice(us, func(i, j int) bool {
		if us[i].Key != us[j].Key {
			return us[i].Key < us[j].Key
		}
		if !us[i].Created.Equal(us[j].Created) {
			return us[i].Created.Before(us[j].Created)
		}
		return us[i].ID < us[j].ID
	})
	limit := opts.Limit
	if limit <= 0 || limit > maxListKeys {
		limit = maxListKeys
	}
	km, idm := opts.KeyMarker, opts.UploadIDMarker
	if km == "" {
		idm = ""
	}
	past := idm == ""
	last := ""
	for _, u := range us {
		if u.Key < km {
			continue
		}
		if u.Key == km {
			if !past {
				past = u.ID == idm
				continue
			}
			if idm == "" {
				continue
			}
		}
		cp := ""
		if d := opts.Delimiter; d != "" {
			if i := strings.Index(u.Key[len(opts.Prefix):], d); i >= 0 {
				cp = u.Key[:len(opts.Prefix)+i+len(d)]
			}
		}
		if cp != "" && (cp == last || cp <= km) {
			continue
		}
		if len(res.Uploads)+len(res.CommonPrefixes) == limit {
			res.Truncated = true
			break
		}
		if cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, cp)
			last, res.NextKeyMarker, res.NextUploadIDMarker = cp, cp, ""
			continue
		}
		res.Uploads = append(res.Uploads, u)
		last, res.NextKeyMarker, res.NextUploadIDMarker = u.Key, u.Key, u.ID
	}
	if !res.Truncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return res, nil
}

func (f *fakeStore) CompleteUploadIf(ctx context.Context, bucket, key, uploadID string, parts []object.CompletePart, cond object.Precondition) (object.Info, error) {
	f.mu.Lock()
	up, err := f.upload(bucket, key, uploadID)
	if err != nil {
		f.mu.Unlock()
		return object.Info{}, err
	}
	if err := fakePrecondition(cond, f.objects[bucket], key); err != nil {
		f.mu.Unlock()
		return object.Info{}, fmt.Errorf("complete %s: %w", uploadID, err)
	}
	var data, md5s []byte
	var sizes []int64
	for i, cp := range parts {
		if i > 0 && cp.Number <= parts[i-1].Number {
			f.mu.Unlock()
			return object.Info{}, fmt.Errorf("complete %s: %w", uploadID, object.ErrInvalidPartOrder)
		}
		p, ok := up.parts[cp.Number]
		if !ok || p.p.ETag != cp.ETag {
			f.mu.Unlock()
			return object.Info{}, fmt.Errorf("complete %s part %d: %w", uploadID, cp.Number, object.ErrInvalidPart)
		}
		if i < len(parts)-1 && p.p.Size < object.MinPartSize {
			f.mu.Unlock()
			return object.Info{}, fmt.Errorf("complete %s part %d: %w", uploadID, cp.Number, object.ErrEntityTooSmall)
		}
		data = append(data, p.data...)
		b, _ := hex.DecodeString(p.p.ETag)
		md5s = append(md5s, b...)
		sizes = append(sizes, p.p.Size)
	}
	delete(f.uploads, uploadID)
	u := up.u
	f.mu.Unlock()
	sum := md5.Sum(md5s)
	etag := fmt.Sprintf("%s-%d", hex.EncodeToString(sum[:]), len(parts))
	return f.commit(object.PutInput{Bucket: bucket, Key: key, ContentType: u.ContentType, Headers: u.Headers, UserMeta: u.UserMeta}, data, etag, sizes)
}

func (f *fakeStore) AbortUpload(ctx context.Context, bucket, key, uploadID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.upload(bucket, key, uploadID); err != nil {
		return err
	}
	delete(f.uploads, uploadID)
	return nil
}

var _ ObjectService = (*fakeStore)(nil)
