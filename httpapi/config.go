package httpapi

import (
	"log/slog"
	"time"

	"github.com/shale-store/shale/internal/s3auth"
)

// DefaultRegion is the region served when Config.Region is empty.
const DefaultRegion = "us-east-1"

// DefaultMaxInFlight is the number of concurrent requests served when
// Config.MaxInFlight is zero.
const DefaultMaxInFlight = 1024

// Defaults of the client deadlines (Config.BodyStall, MinBodyRate,
// BodyRateGrace, WriteStall).
const (
	DefaultBodyStall     = time.Minute
	DefaultMinBodyRate   = 8 << 10 // bytes/s: a 64 kbit/s link
	DefaultBodyRateGrace = 10 * time.Second
	DefaultWriteStall    = 30 * time.Second
)

// Config holds the settings of the S3 handler. The zero value of every field
// but the credentials (Auth or Credentials) is usable.
type Config struct {
	// Region is the one region this endpoint serves: credential scopes must
	// name it, GetBucketLocation reports it and a CreateBucket
	// LocationConstraint must equal it. Default DefaultRegion ("us-east-1").
	Region string

	// Auth authenticates every request. When nil, an Authenticator is built
	// from Credentials, Region, MaxSkew and Now. When both Auth and
	// Credentials are empty every request is refused with AccessDenied
	// (fail closed): there is no anonymous access.
	Auth *s3auth.Authenticator

	// Credentials maps access key → secret key; used only when Auth is nil.
	// The map is copied by New.
	Credentials map[string]string

	// MaxSkew is the clock skew tolerated when Auth is built from
	// Credentials. Zero means s3auth.DefaultMaxSkew (15 minutes).
	MaxSkew time.Duration

	// BaseDomain enables virtual-host style addressing: a request to
	// "bucket.BaseDomain[:port]" addresses bucket and its path is the key.
	// Requests to any other host (or when empty) are path style
	// ("/bucket/key"), which always works.
	BaseDomain string

	// MaxInFlight bounds the requests served at once (each holds a slot
	// until its response is written); a request beyond it is answered at
	// once with 503 SlowDown. Zero means DefaultMaxInFlight; negative means
	// no limit.
	MaxInFlight int

	// BodyStall is how long one read of a request body may wait for the
	// client before the connection is cut (400 RequestTimeout), so a client
	// that stops its upload cannot hold one of the MaxInFlight slots
	// forever. Zero means DefaultBodyStall; negative means no limit.
	BodyStall time.Duration

	// MinBodyRate is the least average rate, in bytes/s, at which a client
	// must send a request body once it has kept the server waiting for
	// BodyRateGrace; below it the connection is cut (400 RequestTimeout).
	// Only time the server spends waiting for body bytes counts. It stops
	// the client that trickles a byte now and then to keep an upload (and
	// its slot) alive, which BodyStall alone does not. Zero means
	// DefaultMinBodyRate; negative means no rate rule. Trade-off: a client
	// on a link slower than this cannot upload.
	MinBodyRate int64

	// BodyRateGrace is the waiting a request body is allowed before
	// MinBodyRate applies (slow starts, TCP ramp-up). Zero means
	// DefaultBodyRateGrace.
	BodyRateGrace time.Duration

	// WriteStall is how long one write of a response may wait for the
	// client to take bytes before the connection is cut, so a client that
	// never reads its response (a GET of a large object left open) holds
	// its slot no longer than this. The server has no overall write
	// deadline: a long download that keeps moving is never cut. Zero means
	// DefaultWriteStall; negative means no limit.
	WriteStall time.Duration

	// Logger receives one record per request that ended in an error the
	// error table does not know (500 InternalError), with the error: at
	// error level, or at debug level when the client went away (its
	// connection closed, a body read or response write failed). Nil
	// discards.
	Logger *slog.Logger

	// Now is the clock, for the Authenticator built from Credentials. Nil
	// means time.Now.
	Now func() time.Time
}

// withDefaults returns cfg with every zero field given its default.
func (cfg Config) withDefaults() Config {
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.BodyStall == 0 {
		cfg.BodyStall = DefaultBodyStall
	}
	if cfg.MinBodyRate == 0 {
		cfg.MinBodyRate = DefaultMinBodyRate
	}
	if cfg.BodyRateGrace == 0 {
		cfg.BodyRateGrace = DefaultBodyRateGrace
	}
	if cfg.WriteStall == 0 {
		cfg.WriteStall = DefaultWriteStall
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Auth == nil && len(cfg.Credentials) > 0 {
		creds := make(map[string]string, len(cfg.Credentials))
		for ak, sk := range cfg.Credentials {
			creds[ak] = sk
		}
		cfg.Credentials = creds
		cfg.Auth = s3auth.New(s3auth.Config{
			Region:  cfg.Region,
			Lookup:  func(ak string) (string, bool) { sk, ok := creds[ak]; return sk, ok },
			MaxSkew: cfg.MaxSkew,
			Now:     cfg.Now,
		})
	}
	return cfg
}
