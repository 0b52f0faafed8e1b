package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"google.golang.org/protobuf/proto"
)

// Defaults of NewStaticMembership when its durations are zero.
const (
	defaultProbeInterval = 500 * time.Millisecond
	defaultDropAfter     = 3 * time.Second
)

// membershipProbeActor is the name of the actor every member spawns to answer
// health probes. It rides on protoactor's remote, so the membership needs no
// port of its own, and with mutual TLS (RemoteOptions) the probes are
// authenticated like every other cluster message.
const membershipProbeActor = "durable-membership"

// StaticMembership is a ClusterProvider with a fixed list of peers: no
// external service, no port of its own. Each member runs a small probe actor
// (named "durable-membership") on protoactor's remote; every probe interval
// the provider asks each peer's probe actor for its cluster.Member and
// publishes, with MemberList.UpdateClusterTopology, itself plus every peer
// that answered within the last dropAfter.
//
// Behaviour to know (protoactor-go's MemberList, not ours):
//
//   - A member that has been dropped once is blocked on that node for good,
//     even if it answers again. To rejoin, the dropped node must start a new
//     actor system (which gets a new member id). Expelled reports when a
//     majority of the other peers tell this node that they dropped it.
//   - A member that stops its cluster (Cluster.Shutdown, graceful or not)
//     first gossips that it left; peers that hear it block it and drop it at
//     their next probe round, well before dropAfter. A crashed member is
//     dropped after dropAfter.
//   - Each node probes on its own, so views may differ for up to about
//     dropAfter (or for good after a partial network partition); ownership
//     must be fenced by the store, not by the topology.
//   - Topology events are published on this provider's goroutine while the
//     MemberList lock is held: subscribers of *cluster.ClusterTopology must
//     not block and must not call MemberList.
//   - Cluster.Shutdown(false) never calls Shutdown of its provider; the probe
//     goroutine therefore also stops on its own once the actor system is
//     stopped.
//   - A StartMember error (a malformed address) is a panic in
//     Cluster.StartMember: protoactor panics on provider errors.
//
// For real deployments protoactor ships providers backed by an external
// service, in its own module (durable does not import them, so their
// dependencies stay out of durable's build unless a program imports one):
//
//   - Consul: github.com/asynkron/protoactor-go/cluster/clusterproviders/consul,
//     consul.New(opts...) or consul.NewWithConfig(*api.Config, opts...)
//     (api is github.com/hashicorp/consul/api), options WithTTL and
//     WithRefreshTTL: a service with a TTL check plus a blocking health query.
//   - etcd: github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd,
//     etcd.New() (etcd at 127.0.0.1:2379, base key "/protoactor") or
//     etcd.NewWithConfig(baseKey, clientv3.Config) (clientv3 is
//     go.etcd.io/etcd/client/v3): a lease plus a prefix watch.
//   - Kubernetes: github.com/asynkron/protoactor-go/cluster/clusterproviders/k8s,
//     k8s.New(opts...) inside a pod (rest.InClusterConfig) or
//     k8s.NewWithConfig(*rest.Config, opts...) (rest is k8s.io/client-go/rest):
//     pod labels plus a pod watch, so the pod's service account must be
//     allowed to get, watch and patch pods.
//   - ZooKeeper: github.com/asynkron/protoactor-go/cluster/clusterproviders/zk,
//     zk.New(endpoints, opts...): ephemeral nodes plus a children watch.
//
// Any of them is passed to cluster.Configure in place of a StaticMembership;
// the rest of the wiring (remote options, identity lookup, kinds) is the same,
// and RemoteOptions' mutual TLS still guards the cluster port. Avoid
// clusterproviders/automanaged: it serves HTTP on all interfaces and allows
// one instance per process.
type StaticMembership struct {
	self          string
	peers         []string // deduplicated, in the given order
	probeInterval time.Duration
	dropAfter     time.Duration
	probeTimeout  time.Duration
	log           *slog.Logger

	mu       sync.Mutex
	started  bool
	c        *pcluster.Cluster
	probePID *actor.PID
	stop     chan struct{} // closed by Shutdown
	done     chan struct{} // closed when the probe goroutine has returned

	expelledOnce sync.Once
	expelled     chan struct{}
}

var _ pcluster.ClusterProvider = (*StaticMembership)(nil)

// NewStaticMembership returns a provider for a member whose remote listens on
// self ("host:port"), with the given peers ("host:port", self may be among
// them), probing every probeInterval and dropping a member that has not
// answered for dropAfter (defaults 500ms and 3s when zero).
//
// Every node must list every peer under the address that peer advertises
// (its remote's advertised "host:port"): protoactor places virtual actors by
// hashing member addresses. A dropAfter shorter than two probe intervals is
// raised to three intervals, so one late answer does not drop a member. A
// nil log means slog.Default().
func NewStaticMembership(self string, peers []string, probeInterval, dropAfter time.Duration, log *slog.Logger) *StaticMembership {
	if log == nil {
		log = slog.Default()
	}
	if probeInterval <= 0 {
		probeInterval = defaultProbeInterval
	}
	if dropAfter <= 0 {
		dropAfter = defaultDropAfter
	}
	if dropAfter < 2*probeInterval {
		log.Warn("static membership: drop delay shorter than two probe intervals, raised to three",
			"dropAfter", dropAfter, "probeInterval", probeInterval)
		dropAfter = 3 * probeInterval
	}
	// A probe waits for its answer at most a third of dropAfter (at least one
	// interval), so a member is dropped only after about three rounds in a row
	// without an answer, and a slow peer still gets a chance to answer.
	probeTimeout := max(probeInterval, dropAfter/3)
	var uniq []string
	for _, p := range peers {
		if !slices.Contains(uniq, p) {
			uniq = append(uniq, p)
		}
	}
	return &StaticMembership{
		self:          self,
		peers:         uniq,
		probeInterval: probeInterval,
		dropAfter:     dropAfter,
		probeTimeout:  probeTimeout,
		log:           log,
		expelled:      make(chan struct{}),
	}
}

// StartMember registers this node as a member: it spawns the probe actor,
// publishes a topology of itself alone and starts probing the peers. It is
// called by Cluster.StartMember, after the remote has started.
func (m *StaticMembership) StartMember(c *pcluster.Cluster) error {
	return m.start(c, true)
}

// StartClient watches the peers without registering this node as a member:
// no probe actor, and the published topology holds only the peers that
// answer. It is called by Cluster.StartClient.
func (m *StaticMembership) StartClient(c *pcluster.Cluster) error {
	return m.start(c, false)
}

// Shutdown stops probing and stops the probe actor, so peers stop hearing
// from this node and drop it after their dropAfter. It waits for the probe
// goroutine to return. It is called by Cluster.Shutdown(true) only; calling it
// more than once, or before a start, is harmless.
func (m *StaticMembership) Shutdown(bool) error {
	m.mu.Lock()
	if !m.started || m.stop == nil {
		m.mu.Unlock()
		return nil
	}
	stop, done, c, pid := m.stop, m.done, m.c, m.probePID
	m.stop = nil
	m.mu.Unlock()

	close(stop)
	<-done
	if pid != nil {
		c.ActorSystem.Root.Stop(pid)
	}
	return nil
}

// Expelled returns a channel closed once a majority of the other peers
// have answered that they dropped this member. Such a peer blocks this
// member's id for good (protoactor's MemberList never lets a member that
// left back in), so the node must stop its cluster and start again with a
// new actor system to rejoin. A minority does not expel: a member that was
// paused drops all the others when it resumes and tells them so.
func (m *StaticMembership) Expelled() <-chan struct{} {
	return m.expelled
}

func (m *StaticMembership) start(c *pcluster.Cluster, member bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("static membership: already started (a provider serves one cluster)")
	}
	if err := checkHostPort(m.self); err != nil {
		return fmt.Errorf("static membership: self: %w", err)
	}
	for _, p := range m.peers {
		if err := checkHostPort(p); err != nil {
			return fmt.Errorf("static membership: peer: %w", err)
		}
	}
	sys := c.ActorSystem
	host, port, err := sys.GetHostPort()
	if err != nil {
		return fmt.Errorf("static membership: address of the actor system %q: %w", sys.Address(), err)
	}
	if addr := sys.Address(); addr != m.self {
		m.log.Warn("static membership: the remote advertises another address than self; peers must list the advertised one",
			"self", m.self, "advertised", addr)
	}
	kinds := c.GetClusterKinds()
	slices.Sort(kinds) // a map's order: keep the record stable
	self := &pcluster.Member{Id: sys.ID, Host: host, Port: int32(port), Kinds: kinds}

	if member {
		props := actor.PropsFromFunc(m.answerProbes(c, self))
		pid, err := sys.Root.SpawnNamed(props, membershipProbeActor)
		if err != nil {
			return fmt.Errorf("static membership: spawn probe actor %q: %w", membershipProbeActor, err)
		}
		m.probePID = pid
		// Self must be in every topology we publish: a list without self
		// blocks self for good (and disthash then poisons every local
		// activation).
		c.MemberList.UpdateClusterTopology(pcluster.Members{self})
	}

	m.started = true
	m.c = c
	m.stop = make(chan struct{})
	m.done = make(chan struct{})
	r := &staticProber{
		m:         m,
		sys:       sys,
		c:         c,
		probe:     self,
		seen:      make(map[string]staticPeer),
		droppedBy: make(map[string]bool),
	}
	if member {
		r.self = self
	}
	for _, p := range m.peers {
		// Probing our own address would go through the local registry and
		// answer with self, which is already listed.
		if p != m.self && p != sys.Address() {
			r.targets = append(r.targets, p)
		}
	}
	go r.run(m.stop, m.done)
	m.log.Info("static membership started", "address", sys.Address(), "id", sys.ID, "member", member,
		"peers", r.targets, "probeInterval", m.probeInterval, "dropAfter", m.dropAfter)
	return nil
}

// answerProbes returns the probe actor's behaviour. A probe is the prober's
// *cluster.Member; the answer is a *cluster.ClusterTopology whose only
// member is this node and whose Blocked lists the prober's id when this node
// has dropped the prober (so the prober learns it must restart to rejoin).
// Both are protoactor's registered protos, so the probe needs no proto of
// ours.
func (m *StaticMembership) answerProbes(c *pcluster.Cluster, self *pcluster.Member) actor.ReceiveFunc {
	return func(ctx actor.Context) {
		probe, ok := ctx.Message().(*pcluster.Member)
		if !ok || ctx.Sender() == nil {
			return
		}
		reply := &pcluster.ClusterTopology{Members: []*pcluster.Member{proto.Clone(self).(*pcluster.Member)}}
		if probe.Id != "" && c.Remote.BlockList().IsBlocked(probe.Id) {
			reply.Blocked = []string{probe.Id}
		}
		ctx.Respond(reply)
	}
}

// staticPeer is what the prober last heard from one peer address.
type staticPeer struct {
	member *pcluster.Member
	last   time.Time // when it last answered
}

// staticProber is the state of the probe goroutine; only that goroutine
// touches it.
type staticProber struct {
	m       *StaticMembership
	sys     *actor.ActorSystem
	c       *pcluster.Cluster
	self    *pcluster.Member // nil for a client
	probe   *pcluster.Member // what we send: our own record
	targets []string         // peer addresses to probe (self excluded)
	seen    map[string]staticPeer
	blocked map[string]bool // ids already logged as blocked
	// droppedBy are the peers whose last answer said they dropped this
	// member (a peer that restarts forgets it).
	droppedBy map[string]bool
}

// run probes every interval until stop is closed or the actor system stops
// (Cluster.Shutdown(false) never calls the provider's Shutdown).
func (r *staticProber) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(r.m.probeInterval)
	defer t.Stop()
	for {
		if r.sys.IsStopped() {
			r.m.log.Debug("static membership: actor system stopped, probing ends", "address", r.sys.Address())
			return
		}
		r.round()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// round probes every peer at once, waits for the answers (at most the probe
// timeout) and publishes the members heard from within dropAfter. One
// goroutine publishes, so topologies are published in order; an unchanged
// topology is a no-op in MemberList.
func (r *staticProber) round() {
	futures := make([]*actor.Future, len(r.targets))
	for i, addr := range r.targets {
		futures[i] = r.sys.Root.RequestFuture(actor.NewPID(addr, membershipProbeActor), r.probe, r.m.probeTimeout)
	}
	for i, f := range futures {
		res, err := f.Result()
		if err != nil {
			continue // timeout or dead letter: not an answer
		}
		r.answered(r.targets[i], res)
	}
	if r.sys.IsStopped() {
		return // do not publish a topology that races the shutdown
	}
	r.c.MemberList.UpdateClusterTopology(r.members(time.Now()))
}

// answered records the answer of the peer at addr.
func (r *staticProber) answered(addr string, res any) {
	reply, ok := res.(*pcluster.ClusterTopology)
	if !ok || len(reply.Members) != 1 || reply.Members[0].GetId() == "" {
		r.m.log.Warn("static membership: unexpected probe answer", "peer", addr, "answer", fmt.Sprintf("%T", res))
		return
	}
	mem := reply.Members[0]
	if prev, ok := r.seen[addr]; ok && prev.member.Id != mem.Id {
		r.m.log.Info("static membership: peer restarted with a new member id", "peer", addr, "old", prev.member.Id, "new", mem.Id)
	}
	r.seen[addr] = staticPeer{member: mem, last: time.Now()}
	if !slices.Contains(reply.Blocked, r.probe.Id) {
		delete(r.droppedBy, addr)
		return
	}
	if !r.droppedBy[addr] {
		r.droppedBy[addr] = true
		r.m.log.Warn("static membership: a peer has dropped this member for good", "peer", addr, "id", r.probe.Id,
			"dropped_by", len(r.droppedBy), "expelled_at", r.expelledAt())
	}
	// Expelled only when a majority of the other peers dropped it: a node
	// that was paused drops everyone else when it resumes (it heard from
	// nobody for a while) and tells each of them so; that alone must not
	// expel the healthy ones, which still see each other.
	if len(r.droppedBy) >= r.expelledAt() {
		r.m.expelledOnce.Do(func() {
			r.m.log.Error("static membership: a majority of the peers have dropped this member for good; restart this node with a new actor system to rejoin",
				"dropped_by", len(r.droppedBy), "id", r.probe.Id)
			close(r.m.expelled)
		})
	}
}

// expelledAt is how many peers must have dropped this member for it to be
// expelled: a majority of the others (1 of 1, 2 of 2, 2 of 3, 3 of 4).
func (r *staticProber) expelledAt() int { return len(r.targets)/2 + 1 }

// members is the topology to publish at now: self (for a member) and every
// peer that answered within dropAfter, one entry per member id.
func (r *staticProber) members(now time.Time) pcluster.Members {
	var out pcluster.Members
	ids := map[string]bool{}
	if r.self != nil {
		out = append(out, r.self)
		ids[r.self.Id] = true
	}
	for _, addr := range r.targets { // the configured order: deterministic
		p, ok := r.seen[addr]
		if !ok || now.Sub(p.last) > r.m.dropAfter || ids[p.member.Id] {
			continue
		}
		if r.c.Remote.BlockList().IsBlocked(p.member.Id) {
			r.logBlocked(addr, p.member.Id)
			continue // MemberList would filter it anyway
		}
		ids[p.member.Id] = true
		out = append(out, p.member)
	}
	return out
}

// logBlocked says once per id that a peer is left out because protoactor
// blocked it (it left, was dropped before, or gossip expired it).
func (r *staticProber) logBlocked(addr, id string) {
	if r.blocked == nil {
		r.blocked = map[string]bool{}
	}
	if r.blocked[id] {
		return
	}
	r.blocked[id] = true
	r.m.log.Warn("static membership: peer blocked by the cluster (it left or was dropped); it stays out until it restarts", "peer", addr, "id", id)
}

// checkHostPort reports whether addr is a "host:port" with a numeric port.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("address %q: empty host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("address %q: port must be 1-65535", addr)
	}
	return nil
}
