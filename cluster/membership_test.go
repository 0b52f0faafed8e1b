//go:build !race

// protoactor's cluster and remote code trips the race detector (known
// upstream races: disthash's rendezvous, BlockList reads, the global grain
// call options), so these tests, which run real protoactor clusters, are
// built only without -race.

package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// smEchoKind is the trivial kind of the test members.
const smEchoKind = "echo"

// smNode is one in-process cluster member of a test.
type smNode struct {
	addr string
	sys  *actor.ActorSystem
	c    *pcluster.Cluster
	prov *StaticMembership

	mu       sync.Mutex
	members  []*pcluster.Member // of the latest topology
	everSeen map[string]string  // member id -> address, of every topology

	stopOnce sync.Once
}

// smTestLogger discards logs unless the test runs with -v.
func smTestLogger(level slog.Level) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// smFreeAddrs returns n loopback addresses whose ports were free a moment ago.
func smFreeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return out
}

// smStart starts a member on addr (127.0.0.1 only) with the static provider
// and the echo kind; it is stopped at the end of the test.
func smStart(t *testing.T, addr string, peers []string, opts []remote.ConfigOption) *smNode {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var portNum int
	if _, err := fmt.Sscan(port, &portNum); err != nil {
		t.Fatal(err)
	}
	protoLog := smTestLogger(slog.LevelWarn).With("node", addr)
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return protoLog }),
		actor.WithDeadLetterRequestLogging(false))
	n := &smNode{addr: addr, sys: sys, everSeen: map[string]string{}}
	// Subscribe before StartMember, which publishes the first topology.
	// The handler runs under MemberList's lock: record and return.
	sys.EventStream.Subscribe(func(ev any) {
		top, ok := ev.(*pcluster.ClusterTopology)
		if !ok {
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		n.members = top.Members
		for _, m := range top.Members {
			n.everSeen[m.Id] = m.Address()
		}
	})
	n.prov = NewStaticMembership(addr, peers, 0, 0, smTestLogger(slog.LevelInfo).With("node", addr))
	echo := pcluster.NewKind(smEchoKind, actor.PropsFromFunc(func(ctx actor.Context) {
		if s, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			ctx.Respond(wrapperspb.String(s.Value + " from " + ctx.Self().Address))
		}
	}))
	rc := remote.Configure(host, portNum, opts...)
	cfg := pcluster.Configure("durable-test", n.prov, disthash.New(), rc, pcluster.WithKinds(echo))
	n.c = pcluster.New(sys, cfg)
	n.c.StartMember()
	t.Cleanup(func() { smStopAll(t, n) })
	return n
}

// memberAddrs returns the sorted addresses of the latest topology.
func (n *smNode) memberAddrs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, m := range n.members {
		out = append(out, m.Address())
	}
	slices.Sort(out)
	return out
}

// everListed reports whether a member at addr was ever in a topology.
func (n *smNode) everListed(addr string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range n.everSeen {
		if a == addr {
			return true
		}
	}
	return false
}

// crash stops the node the way a crash looks to its peers: the actor system
// stops and the gRPC server closes, with nothing said to anyone. (Even
// Cluster.Shutdown(false) first gossips that the member left gracefully,
// which makes the peers block it at once instead of after dropAfter.) The
// provider's Shutdown is not called, as with Cluster.Shutdown(false).
func (n *smNode) crash() {
	n.stopOnce.Do(func() {
		n.sys.Shutdown()
		n.c.Remote.Shutdown(false)
	})
}

// smStopAll shuts the nodes down gracefully, at once (each takes seconds),
// and checks that each provider's probe goroutine has returned.
func smStopAll(t *testing.T, nodes ...*smNode) {
	t.Helper()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stopOnce.Do(func() { n.c.Shutdown(true) })
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		t.Errorf("cluster shutdown still running after 60s")
		return
	}
	for _, n := range nodes {
		smWaitProberDone(t, n)
	}
}

// smWaitProberDone fails the test unless the node's probe goroutine returns.
func smWaitProberDone(t *testing.T, n *smNode) {
	t.Helper()
	n.prov.mu.Lock()
	done := n.prov.done
	n.prov.mu.Unlock()
	if done == nil {
		return // never started
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s: the membership probe goroutine did not return", n.addr)
	}
}

// smEventually polls cond until it holds or the deadline passes.
func smEventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

func TestStaticMembershipThreeMembersSeeEachOtherAndDropOneThatStops(t *testing.T) {
	addrs := smFreeAddrs(t, 3)
	opts, err := RemoteOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*smNode
	for _, a := range addrs {
		nodes = append(nodes, smStart(t, a, addrs, opts))
	}
	all := slices.Sorted(slices.Values(addrs))
	for _, n := range nodes {
		took := smEventually(t, 10*time.Second, n.addr+" sees three members", func() bool {
			return slices.Equal(n.memberAddrs(), all)
		})
		t.Logf("%s sees all three after %v", n.addr, took)
	}

	// The topology is usable: a virtual actor answers from its owner.
	res, err := nodes[0].c.Request("someone", smEchoKind, wrapperspb.String("hi"))
	if err != nil {
		t.Fatalf("request to the echo kind: %v", err)
	}
	if s, ok := res.(*wrapperspb.StringValue); !ok || s.Value == "" {
		t.Fatalf("echo answered %v", res)
	}

	gone := nodes[2]
	gone.crash()
	// Nobody called the provider's Shutdown: the probe goroutine must
	// notice the stopped actor system by itself.
	smWaitProberDone(t, gone)
	rest := slices.Sorted(slices.Values(addrs[:2]))
	for _, n := range nodes[:2] {
		took := smEventually(t, 10*time.Second, n.addr+" drops "+gone.addr, func() bool {
			return slices.Equal(n.memberAddrs(), rest)
		})
		t.Logf("%s dropped %s after %v (dropAfter %v)", n.addr, gone.addr, took, n.prov.dropAfter)
	}
	smStopAll(t, nodes[:2]...)
}

func TestStaticMembershipTellsADroppedMemberItIsExpelled(t *testing.T) {
	addrs := smFreeAddrs(t, 2)
	opts, err := RemoteOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := smStart(t, addrs[0], addrs, opts)
	b := smStart(t, addrs[1], addrs, opts)
	smEventually(t, 10*time.Second, "a sees b", func() bool { return len(a.memberAddrs()) == 2 })
	select {
	case <-b.prov.Expelled():
		t.Fatal("b expelled before anyone dropped it")
	default:
	}

	// What a drop does on a: b's id is blocked for good.
	a.c.Remote.BlockList().Block(b.sys.ID)
	smEventually(t, 10*time.Second, "a drops b", func() bool { return slices.Equal(a.memberAddrs(), addrs[:1]) })
	select {
	case <-b.prov.Expelled():
	case <-time.After(10 * time.Second):
		t.Fatal("b was not told that a dropped it")
	}
	// b still lists a: a answers, it only refuses b.
	if got := b.memberAddrs(); len(got) != 2 {
		t.Errorf("b lists %v, want both", got)
	}
}

func TestNewStaticMembershipDefaults(t *testing.T) {
	m := NewStaticMembership("127.0.0.1:7000", []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7001"}, 0, 0, nil)
	if m.probeInterval != 500*time.Millisecond || m.dropAfter != 3*time.Second || m.probeTimeout != time.Second {
		t.Errorf("interval %v, drop %v, timeout %v; want 500ms, 3s, 1s", m.probeInterval, m.dropAfter, m.probeTimeout)
	}
	if want := []string{"127.0.0.1:7000", "127.0.0.1:7001"}; !slices.Equal(m.peers, want) {
		t.Errorf("peers %v, want %v", m.peers, want)
	}
	m = NewStaticMembership("127.0.0.1:7000", nil, time.Second, time.Second, smTestLogger(slog.LevelWarn))
	if m.dropAfter != 3*time.Second {
		t.Errorf("drop %v for interval 1s, want it raised to 3s", m.dropAfter)
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:7000", true},
		{"node-1.example:7000", true},
		{"[::1]:7000", true},
		{"127.0.0.1", false},
		{":7000", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:70000", false},
		{"127.0.0.1:http", false},
	} {
		if err := checkHostPort(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkHostPort(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}
