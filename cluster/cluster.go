// Package cluster runs a durable node as one member of a cluster of nodes
// that serve one task hub together. It is the partition seam across nodes,
// and the only package that knows protoactor's cluster API.
//
// Each partition of the hub is a protoactor virtual actor of kind
// "partition" whose identity is the partition number: protoactor's identity
// lookup (rendezvous hashing over the members) places it on one node, which
// claims the partition's store (fencing out any previous owner; see
// persistence.Hub.Claim) and hosts its instance and entity actors. Members
// find each other through a static list of peers (StaticMembership) and
// drop a member that stops answering.
//
// A Member implements seam.Partitions: a request for a partition this node
// hosts is served in-process; any other goes to the partition's actor on
// its node, retried with the same idempotency key while the partition
// moves. Messages between instances and entities of different partitions
// (a sub-orchestration's start and end, outbox deliveries and their
// acknowledgements) travel as actors.PartitionMessage, in order per target
// partition.
//
// Protoactor activates a virtual actor on its first message only, so after
// a member leaves, every node pings every partition it does not host (on
// each topology change, and every WakeInterval): the partitions the lost
// member owned come up on their new owners and resume their pending work
// without waiting for a client.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	"github.com/asynkron/protoactor-go/remote"

	"github.com/durable-go/durable/actors"
	"github.com/durable-go/durable/seam"
)

// PartitionKind is the cluster kind of partition actors.
const PartitionKind = "partition"

// Config configures a node's membership of a cluster.
type Config struct {
	// Addr is this node's cluster port, "host:port": its remote binds
	// exactly this address, and the other members reach it there.
	Addr string
	// Peers are the cluster ports of the members, "host:port" each (this
	// node's may be among them).
	Peers []string
	// TLS, when set, authenticates members to each other with mutual TLS
	// on the cluster port. Without it the port is unauthenticated: anyone
	// who reaches it can send requests (Start logs a warning).
	TLS *TLSFiles
	// Name is the cluster's name (default "durable"); members of different
	// names do not form one cluster.
	Name string
	// ProbeInterval and DropAfter tune membership: a member that has not
	// answered a probe for DropAfter is dropped (defaults 500ms and 3s).
	ProbeInterval, DropAfter time.Duration
	// RequestTimeout bounds one attempt of a request to another node's
	// partition (default 2s); a request is retried, with its idempotency
	// key, while the partition moves, until its context ends. An attempt
	// sent to a node that just died waits this long, so it bounds what a
	// failover adds to a request.
	RequestTimeout time.Duration
	// WakeInterval is how often a node pings the partitions it does not
	// host, so that none stays unplaced (default 2s).
	WakeInterval time.Duration
	// Provider replaces StaticMembership (and Peers) with another of
	// protoactor's membership providers (consul, etcd, Kubernetes, under
	// github.com/asynkron/protoactor-go/cluster/clusterproviders/).
	Provider pcluster.ClusterProvider
}

func (c *Config) withDefaults() {
	if c.Name == "" {
		c.Name = "durable"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 2 * time.Second
	}
	if c.WakeInterval <= 0 {
		c.WakeInterval = 2 * time.Second
	}
}

// Member is this node's part of a cluster.
type Member struct {
	cfg     Config
	log     *slog.Logger
	system  *actor.ActorSystem
	cluster *pcluster.Cluster
	node    *actors.Node
	count   int

	sendersMu sync.Mutex
	senders   map[int]chan *actors.PartitionMessage

	stop     chan struct{}
	wg       sync.WaitGroup
	topology chan struct{}
	sub      *eventstream.Subscription

	readyMu sync.Mutex
	ready   bool

	expelled <-chan struct{} // nil when the provider cannot tell
}

// Start joins the cluster at cfg.Addr and runs a node on it: nodeCfg is the
// node's configuration, with a Hub opened by persistence.OpenShared (Start
// sets its System, Remote and Owner). It returns once the member has
// joined; partitions come up as they are placed.
func Start(cfg Config, nodeCfg actors.Config) (*Member, error) {
	cfg.withDefaults()
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster address %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 {
		return nil, fmt.Errorf("cluster address %q: a port is required", cfg.Addr)
	}
	log := nodeCfg.Logger
	if log == nil {
		log = slog.Default()
	}
	opts, err := RemoteOptions(cfg.TLS)
	if err != nil {
		return nil, err
	}
	if cfg.TLS == nil {
		log.Warn("cluster port is unauthenticated: anyone who reaches it can send requests; give TLS certificates to authenticate members", "addr", cfg.Addr)
	}
	m := &Member{cfg: cfg, log: log, stop: make(chan struct{}), topology: make(chan struct{}, 1), senders: map[int]chan *actors.PartitionMessage{}}
	m.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return actors.ProtoactorLogger(log) }))
	opts = append(opts, remote.WithAdvertisedHost(cfg.Addr))
	rc := remote.Configure(host, port, opts...)
	rc.MaxRetryCount = 2 // a dead peer's endpoint gives up after about 4 s (2 s a try)

	nodeCfg.System = m.system
	nodeCfg.Remote = m.sendRemote
	nodeCfg.Owner = cfg.Addr
	nodeCfg.MayClaim = m.hasQuorum
	node, err := actors.StartNode(nodeCfg)
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	m.node = node
	m.count = node.Count()
	kind := pcluster.NewKind(PartitionKind, node.PartitionProps(func(ctx actor.Context) (int, error) {
		return strconv.Atoi(pcluster.GetClusterIdentity(ctx).GetIdentity())
	}))
	var membership pcluster.ClusterProvider = cfg.Provider
	if membership == nil {
		membership = NewStaticMembership(cfg.Addr, cfg.Peers, cfg.ProbeInterval, cfg.DropAfter, log)
	}
	if e, ok := membership.(interface{ Expelled() <-chan struct{} }); ok {
		m.expelled = e.Expelled()
	}
	ccfg := pcluster.Configure(cfg.Name, membership, disthash.New(), rc,
		pcluster.WithKinds(kind), pcluster.WithRequestTimeout(cfg.RequestTimeout))
	m.cluster = pcluster.New(m.system, ccfg)
	// Subscribe before joining: the first topology must not be missed.
	// The subscriber runs under the member list's lock: it only signals.
	m.sub = m.system.EventStream.Subscribe(func(ev any) {
		if _, ok := ev.(*pcluster.ClusterTopology); ok {
			select {
			case m.topology <- struct{}{}:
			default:
			}
		}
	})
	if err := startMember(m.cluster); err != nil {
		_ = node.Shutdown(context.Background())
		return nil, err
	}
	m.wg.Add(1)
	go m.wakeLoop()
	return m, nil
}

// startMember joins, turning protoactor's panics (a port that cannot be
// bound, a provider that fails) into an error.
func startMember(c *pcluster.Cluster) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("join cluster: %v", r)
		}
	}()
	c.StartMember()
	return nil
}

// Node returns the node this member runs.
func (m *Member) Node() *actors.Node { return m.node }

// Expelled returns a channel closed once a majority of the other members
// have dropped this one (for example after a pause longer than DropAfter). protoactor's
// members never let a dropped member back in, so from then on this member
// claims nothing the others accept and must be restarted: durable serve
// exits. With a Provider that cannot tell, the channel is nil (never
// closed).
func (m *Member) Expelled() <-chan struct{} { return m.expelled }

// Count implements seam.Partitions.
func (m *Member) Count() int { return m.count }

// Ready reports whether the member serves every request: it sees a
// majority of the cluster, and every partition has answered a ping since
// it joined.
func (m *Member) Ready() bool {
	m.readyMu.Lock()
	defer m.readyMu.Unlock()
	return m.ready && m.hasQuorum()
}

// quorum is how many members a node must see to claim partitions and serve
// requests: a majority of the listed peers (this node included). A node cut
// off from the others (a network partition, a certificate the others do
// not accept) then stops serving instead of taking every partition for
// itself from the members that still form the cluster. With another
// Provider the listed peers are not known: no quorum is asked.
func (m *Member) quorum() int {
	if m.cfg.Provider != nil {
		return 1
	}
	want := map[string]bool{m.cfg.Addr: true}
	for _, p := range m.cfg.Peers {
		want[p] = true
	}
	return len(want)/2 + 1
}

// hasQuorum reports whether this node sees a majority of the cluster.
func (m *Member) hasQuorum() bool {
	return m.cluster != nil && m.cluster.MemberList.Members().Len() >= m.quorum()
}

// errNoQuorum answers requests while this node does not see a majority.
var errNoQuorum = fmt.Errorf("this node does not see a majority of the cluster's members: %w", seam.ErrUnavailable)

// Call implements seam.Partitions: a request for a partition hosted here is
// served in-process; any other goes to the partition's node. While the
// partition is unavailable (moving, its node lost), the request is sent
// again with the same idempotency key until ctx ends.
func (m *Member) Call(ctx context.Context, req *seam.Request) (*seam.Response, error) {
	p, err := seam.PartitionOf(req, m.count)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if !m.hasQuorum() {
			// Retrying would only wait: answer at once, and the caller
			// (an HTTP client: 503) goes to another node.
			return nil, fmt.Errorf("call partition %d: %w", p, errNoQuorum)
		}
		resp, err := m.callOnce(ctx, p, req)
		if err == nil || !errors.Is(err, seam.ErrUnavailable) || ctx.Err() != nil {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("call partition %d: %w (last: %w)", p, ctx.Err(), err)
		case <-m.stop:
			return nil, err
		case <-time.After(retryDelay(attempt)):
		}
	}
}

// retryDelay backs off from 20 ms to 500 ms.
func retryDelay(attempt int) time.Duration {
	return min(20*time.Millisecond<<min(attempt, 5), 500*time.Millisecond)
}

func (m *Member) callOnce(ctx context.Context, p int, req *seam.Request) (*seam.Response, error) {
	if m.node.Hosts(p) {
		return m.node.Call(ctx, req)
	}
	timeout := m.cfg.RequestTimeout
	if w := req.GetWaitForInstance(); w != nil {
		// The partition ends the subscription before the request times
		// out; the Client subscribes again.
		w.TimeoutMillis = max(1, (timeout - timeout/5).Milliseconds())
	}
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("call partition %d: %w", p, context.DeadlineExceeded)
	}
	res, err := m.cluster.Request(strconv.Itoa(p), PartitionKind, req, pcluster.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("call partition %d: %w: %w", p, seam.ErrUnavailable, err)
	}
	resp, ok := res.(*seam.Response)
	if !ok {
		return nil, fmt.Errorf("call partition %d: unexpected answer %T: %w", p, res, seam.ErrUnavailable)
	}
	return resp, resp.GetError().Err()
}

// sendRemote is the node's Config.Remote: one sender goroutine per target
// partition keeps the messages to it in order (outbox receivers drop a
// message at or below the highest seq they applied, so order matters).
func (m *Member) sendRemote(p int, msg *actors.PartitionMessage) {
	m.sendersMu.Lock()
	q, ok := m.senders[p]
	if !ok {
		q = make(chan *actors.PartitionMessage, 4096)
		m.senders[p] = q
		m.wg.Add(1)
		go m.sender(p, q)
	}
	m.sendersMu.Unlock()
	select {
	case q <- msg:
	case <-m.stop:
	}
}

// sender delivers the messages for partition p in order, to whichever node
// hosts it. A message that finds no owner is retried a while, then dropped:
// senders resend unacknowledged outbox messages, and a parent asks its
// children again when it is recovered.
func (m *Member) sender(p int, q chan *actors.PartitionMessage) {
	defer m.wg.Done()
	identity := strconv.Itoa(p)
	for {
		var msg *actors.PartitionMessage
		select {
		case <-m.stop:
			return
		case msg = <-q:
		}
		m.deliver(p, identity, msg)
	}
}

// messageRetryFor bounds how long a message between partitions is tried
// again while no owner of its target acknowledges it.
const messageRetryFor = time.Minute

// deliver hands msg to the owner of partition p and waits until that
// partition actor acknowledges it, sending the same message again while
// the partition moves (a send to a cached placement that went stale is a
// dead letter, and a sub-orchestration's end lost that way would leave its
// parent waiting while both nodes run on). A receiver may so get a message
// twice: outbox deliveries are de-duplicated by sequence, a repeated start
// of a child is answered as a start of an existing instance, and a
// repeated end of a child finds its task no longer open. After
// messageRetryFor it gives up: the recovery of the sender (outbox) or of
// the parent (its open sub-orchestrations) sends again.
func (m *Member) deliver(p int, identity string, msg *actors.PartitionMessage) {
	deadline := time.Now().Add(messageRetryFor)
	for attempt := 0; ; attempt++ {
		if m.node.Hosts(p) {
			// It moved here meanwhile.
			if err := m.node.Deliver(p, msg); err == nil {
				return
			}
		} else if _, err := m.cluster.Request(identity, PartitionKind, msg, pcluster.WithTimeout(m.cfg.RequestTimeout)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			m.log.Warn("message between partitions dropped: no owner of its target acknowledged it", "partition", p, "target", msg.GetTarget(), "tried_for", messageRetryFor)
			return
		}
		select {
		case <-m.stop:
			return
		case <-time.After(retryDelay(attempt)):
		}
	}
}

// wakeLoop pings every partition not hosted here on each topology change
// and every WakeInterval, so that partitions of a lost member are placed
// again and resume their work.
func (m *Member) wakeLoop() {
	defer m.wg.Done()
	m.awaitPeers()
	tick := time.NewTicker(m.cfg.WakeInterval)
	defer tick.Stop()
	m.wakeAll()
	for {
		select {
		case <-m.stop:
			return
		case <-m.topology:
		case <-tick.C:
		}
		m.wakeAll()
	}
}

// awaitPeers holds the first wake-up until every listed peer is a member,
// or for at most the time it takes to drop one that does not answer: a
// node that woke partitions before it saw the others would place every
// partition on itself and claim them, only to be fenced out by their real
// owners a moment later (and each of those claims costs a grace period).
func (m *Member) awaitPeers() {
	want := map[string]bool{m.cfg.Addr: true}
	for _, p := range m.cfg.Peers {
		want[p] = true
	}
	if m.cfg.Provider != nil {
		return // another provider's peers are not ours to count
	}
	dropAfter := m.cfg.DropAfter
	if dropAfter <= 0 {
		dropAfter = defaultDropAfter
	}
	deadline := time.Now().Add(dropAfter)
	for time.Now().Before(deadline) && m.cluster.MemberList.Members().Len() < len(want) {
		select {
		case <-m.stop:
			return
		case <-m.topology:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *Member) wakeAll() {
	if !m.hasQuorum() {
		m.readyMu.Lock()
		m.ready = false
		m.readyMu.Unlock()
		return
	}
	var wg sync.WaitGroup
	answered := make([]bool, m.count)
	for p := 0; p < m.count; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), m.cfg.RequestTimeout)
			defer cancel()
			_, err := m.callOnce(ctx, p, &seam.Request{Op: &seam.Request_Ping{Ping: &seam.Ping{Partition: int32(p)}}})
			// A partition that is down answers, and says so: the cluster
			// is ready without it (NodeStats.PartitionsDown of the node
			// it is placed on names it).
			answered[p] = err == nil || errors.Is(err, seam.ErrPartitionDown)
		}()
	}
	wg.Wait()
	all := true
	for _, ok := range answered {
		all = all && ok
	}
	m.readyMu.Lock()
	m.ready = m.ready || all
	m.readyMu.Unlock()
}

// Shutdown leaves the cluster: the node's partitions stop after their
// in-flight commits and release their stores for the next owners, then the
// member leaves and its port closes.
func (m *Member) Shutdown(ctx context.Context) error {
	select {
	case <-m.stop:
		return nil
	default:
	}
	close(m.stop)
	m.system.EventStream.Unsubscribe(m.sub)
	err := m.node.Shutdown(ctx)
	m.wg.Wait()
	m.cluster.Shutdown(true)
	return err
}
