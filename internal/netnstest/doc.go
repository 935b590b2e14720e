// Package netnstest builds, for one test, a private network of Linux network
// namespaces in which real processes can be partitioned from each other by
// taking a link down — a real partition, not a mock: packets are dropped by
// the kernel, connections stall, nobody is told.
//
// Nouns:
//
//   - A Net is one topology, owned by one test: a hub namespace holding a
//     bridge, and N node namespaces. Every name it makes starts with
//     "shnt-<pid>-<random>", so parallel and aborted runs never clash; New
//     first deletes the namespaces of earlier runs whose process is gone.
//     The test's Cleanup kills whatever runs inside and deletes every
//     namespace (which deletes every link and the bridge with it), whether
//     the test passed or not.
//   - A Node is one namespace with loopback up and two interfaces:
//     "cluster", a veth whose other end is a port of the hub's bridge
//     (Node.Cluster, 10.99.0.i/24: the network the nodes talk to each other
//     over), and "control", a point-to-point veth to the root namespace
//     (Node.Control, a /30 inside a 10.x.y.0/24 that New checked is not
//     routed on this host), over which the test process, which stays in the
//     root namespace, reaches the node whatever the cluster network does.
//     The root namespace has no link to the cluster network.
//   - Cut takes the node's bridge port down (`ip link set … down` inside
//     the hub): the node is cut off from every other node, in both
//     directions, while its control link stays up. Heal brings it back.
//   - A Process is a command started inside a node's namespace with `ip
//     netns exec`, in its own process group, its output in a log file under
//     t.TempDir() whose tail the test prints if it failed. The test's
//     Cleanup stops it (SIGTERM to the group, SIGKILL after a grace).
//
// The bridge lives in the hub namespace rather than in the root one so that
// nothing global changes: the host's firewall (a FORWARD policy of DROP, as
// Docker sets, or br_netfilter passing bridged frames to iptables) never
// sees the cluster traffic, no sysctl of the host is written, and the
// cluster subnet cannot collide with the host's routes.
//
// New skips the test, saying "network namespaces unavailable: …", when a
// namespace cannot be made (not root, no `ip`, no permission); every later
// failure fails the test. Every command it runs is bounded in time.
//
// What it does not do: shape traffic (delay, loss, bandwidth), partition
// asymmetrically, or work anywhere but on Linux.
package netnstest
