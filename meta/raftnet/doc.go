// Package raftnet is the authenticated network layer of the metadata raft
// group: a raft.StreamLayer (Layer) for raft.NewNetworkTransport whose every
// connection, in both directions, proves knowledge of the cluster secret
// before raft sees a byte of it, so that whoever merely reaches the raft
// port can neither join the group nor append, vote or install a snapshot.
//
// Nouns:
//
//   - The handshake key: HMAC-SHA256(cluster secret, "shale raft handshake
//     v1"), so the raw secret is never a key of two protocols (peerauth
//     signs HTTP requests with it).
//
//   - A replica's identity: its raft server id (Config.ID) and its raft
//     address (Config.Advertise, what the others dial).
//
//   - The handshake, on every new connection, dialer D to listener L:
//
//     D → L  magic "SHRAFT01", nonce Nd (32 random bytes), D's id, the address D dialed
//     L → D  nonce Nl (32 random bytes), L's id, MAC("L", transcript)
//     D → L  MAC("D", transcript)
//     L → D  one byte: accepted
//
//     where transcript is the magic, Nd, Nl and the three length-prefixed
//     strings (D's id, the dialed address, L's id), and MAC(role, …) is
//     HMAC-SHA256 under the handshake key of the role label and the
//     transcript. Each side checks the other's MAC (constant time) and L
//     checks that the dialed address is its own advertised address.
//
// Invariants:
//
//   - Accept returns only connections whose dialer completed the handshake;
//     a connection that fails it (wrong secret, no handshake, a handshake
//     recorded from another connection, a wrong target address, too slow)
//     is closed before raft reads from it, and Dial returns an error for
//     a listener that fails it.
//   - A recorded handshake never succeeds again: each side's MAC covers a
//     fresh nonce of the other side, so no replay cache is needed; the role
//     labels stop a MAC being reflected back to its sender; the dialed
//     address stops one recorded for replica A being played to replica B.
//   - Handshakes run off the accept loop, at most Config.MaxHandshakes at
//     once and each bounded by Config.HandshakeTimeout, so slow or silent
//     clients cannot stall the acceptance of real replicas.
//   - After the handshake the stream is integrity-protected: with TLS
//     configured (Config.ServerTLS and ClientTLS, from internal/clustertls:
//     mutual TLS with the cluster CA) by TLS, which runs under the handshake
//     (a certificate from another CA fails before it) and also encrypts;
//     without TLS by frames (stream.go) that each carry an HMAC-SHA256 under
//     a key per direction derived from the handshake, over the frame's
//     sequence number, length and payload, so a byte changed, dropped,
//     replayed or injected on the path ends the connection (ErrTampered)
//     before raft decodes it.
//
// What it does not do: without TLS it does not encrypt (raft's entries —
// bucket and key names, manifests — cross the network readable; turn on
// internal TLS for confidentiality); it does not tell replicas apart beyond the
// secret (any holder of the secret may claim any id, as in peerauth); it
// does not rotate secrets.
package raftnet
