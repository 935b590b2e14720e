// Package clustertls is the TLS of shale's internal traffic (gateway → node,
// gateway → meta, node → meta, repair and meta → node): a cluster CA, the
// certificates it issues to the cluster's processes, and the tls.Configs
// that use them.
//
// Nouns:
//
//   - The cluster CA: a self-signed ECDSA P-256 certificate (ca.pem) and its
//     key (ca-key.pem), both written 0600. `shale dev --internal-tls`
//     creates one in its data dir; operators may make their own with any
//     tool. It signs nothing but the cluster's certificates.
//   - A certificate (name.pem, name-key.pem, 0600): ECDSA P-256, signed by
//     the CA, valid for server and client authentication, with the SANs it
//     is served under (IP addresses and DNS names of its listen and
//     advertised addresses).
//   - ServerConfig: serve with a certificate and require a client
//     certificate from the cluster CA (mutual TLS), TLS 1.3 only.
//   - ClientConfig: present a certificate and trust only the cluster CA —
//     not the system roots — for the server's.
//
// Invariants: private keys are only ever written 0600 (created with
// O_EXCL, never overwritten); a peer whose certificate does not chain to
// the cluster CA fails the handshake, in both directions; certificates
// carry no wildcard.
//
// What it does not do: authorize requests (every request is still signed
// with the cluster secret, internal/peerauth), rotate or revoke
// certificates, or serve the S3 endpoint's TLS (the gateway's --tls-cert).
package clustertls
