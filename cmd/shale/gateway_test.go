package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// TestGatewayTLSFlagsGoTogether: a key without a certificate must not fall
// back to plain HTTP, and a certificate without a key must not start either.
func TestGatewayTLSFlagsGoTogether(t *testing.T) {
	for _, f := range []gatewayFlags{
		{tlsKey: "key.pem"},
		{tlsCert: "cert.pem"},
	} {
		err := runGateway(context.Background(), io.Discard, f)
		if err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key") {
			t.Errorf("cert %q key %q: err = %v, want the pairing error", f.tlsCert, f.tlsKey, err)
		}
	}
	for _, f := range []gatewayFlags{{}, {tlsCert: "cert.pem", tlsKey: "key.pem"}} {
		if err := f.validate(); err != nil {
			t.Errorf("cert %q key %q: %v", f.tlsCert, f.tlsKey, err)
		}
	}
}
