// Package metrics serves what a durable node does in the Prometheus text
// format: give New's Metrics to durable.Options.Observer, Watch the
// runtime, and mount Handler at /metrics.
//
//	m := metrics.New()
//	rt, err := durable.Open(durable.Options{Dir: "data", Observer: m})
//	...
//	m.Watch(rt)
//	http.Handle("/metrics", m.Handler())
//
// Names follow Prometheus' conventions (durable_…_total counters, _seconds
// histograms). The metrics have their own registry, with the Go runtime's
// and the process's collectors, so they do not mix with a program's
// default registry unless it asks (Registry).
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/durable-go/durable"
)

// Metrics is a durable.Observer that keeps what it hears as Prometheus
// metrics. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	started       *prometheus.CounterVec
	ended         *prometheus.CounterVec
	activities    *prometheus.CounterVec
	activityTime  *prometheus.HistogramVec
	retries       *prometheus.CounterVec
	turnCommit    prometheus.Histogram
	turnErrors    prometheus.Counter
	storeCommit   prometheus.Histogram
	storeBatches  prometheus.Histogram
	inMemory      *prometheus.GaugeVec
	passivations  *prometheus.CounterVec
	timerLag      prometheus.Histogram
	inMemoryKinds map[string]prometheus.Gauge // resolved once: actors come and go often
	stopKinds     map[string]prometheus.Counter

	// byName caches the per-name children (an activity's counters and
	// histogram): resolving label values hashes them on every call.
	byName sync.Map // string -> *named

	watchOnce sync.Once
}

type named struct {
	completed, failed, retries prometheus.Counter
	duration                   prometheus.Observer
}

// Buckets, in seconds: store commits and turns from 50 µs (an fsync on a
// fast disk) to about 1.6 s; activities from 1 ms to about 65 s; timer lag
// from 1 ms to about 16 s.
var (
	commitBuckets   = prometheus.ExponentialBuckets(0.00005, 2, 16)
	activityBuckets = prometheus.ExponentialBuckets(0.001, 2, 17)
	lagBuckets      = prometheus.ExponentialBuckets(0.001, 2, 15)
	batchBuckets    = prometheus.ExponentialBuckets(1, 2, 11)
)

// New returns Metrics registered with a registry of their own, with the Go
// runtime's and the process's collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.started = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "durable_instances_started_total", Help: "Orchestration instances started, by orchestrator.",
	}, []string{"orchestrator"})
	m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "durable_instances_ended_total", Help: "Orchestration instances that ended, by orchestrator and final status (Completed, Failed, Terminated).",
	}, []string{"orchestrator", "status"})
	m.activities = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "durable_activity_executions_total", Help: "Activity executions, by activity and outcome (completed, failed).",
	}, []string{"activity", "outcome"})
	m.activityTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "durable_activity_duration_seconds", Help: "Time an activity execution ran, by activity.", Buckets: activityBuckets,
	}, []string{"activity"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "durable_activity_retries_total", Help: "Activity executions that were retries of a failed one (attempt 2 and later), by activity.",
	}, []string{"activity"})
	m.turnCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "durable_turn_commit_seconds", Help: "Time from an instance's commit request (start, turn, control) to its durable answer.", Buckets: commitBuckets,
	})
	m.turnErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "durable_turn_commit_errors_total", Help: "Instance commits that failed.",
	})
	m.storeCommit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "durable_store_commit_seconds", Help: "Time a store transaction took to commit: its fsync in sync mode.", Buckets: commitBuckets,
	})
	m.storeBatches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "durable_store_commits_per_transaction", Help: "Commits (of instances and entities) that group commit merged into one store transaction.", Buckets: batchBuckets,
	})
	m.inMemory = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "durable_actors_in_memory", Help: "Instance and entity actors in memory (not passivated), by kind.",
	}, []string{"kind"})
	m.passivations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "durable_passivations_total", Help: "Instance and entity actors that left memory (passivated, or stopped with the node), by kind.",
	}, []string{"kind"})
	m.timerLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "durable_timer_lag_seconds", Help: "How late a durable timer reached its instance: fired minus due.", Buckets: lagBuckets,
	})
	m.inMemoryKinds = map[string]prometheus.Gauge{}
	m.stopKinds = map[string]prometheus.Counter{}
	for _, k := range []string{"instance", "entity"} {
		m.inMemoryKinds[k] = m.inMemory.WithLabelValues(k)
		m.stopKinds[k] = m.passivations.WithLabelValues(k)
	}
	m.reg.MustRegister(m.started, m.ended, m.activities, m.activityTime, m.retries, m.turnCommit, m.turnErrors,
		m.storeCommit, m.storeBatches, m.inMemory, m.passivations, m.timerLag,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry the metrics are in, to add a program's
// own or to gather them elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Watch adds the metrics read from rt when scraped: activities running,
// the activity slots, instances waiting for a slot, partitions hosted,
// and the store's cumulative commit counters. Call it once, after Open;
// later calls do nothing.
func (m *Metrics) Watch(rt *durable.Runtime) {
	m.watchOnce.Do(func() {
		m.reg.MustRegister(&nodeCollector{rt: rt})
	})
}

var _ durable.Observer = (*Metrics)(nil)

// InstanceStarted implements durable.Observer.
func (m *Metrics) InstanceStarted(name string) { m.started.WithLabelValues(name).Inc() }

// InstanceEnded implements durable.Observer.
func (m *Metrics) InstanceEnded(name, status string) { m.ended.WithLabelValues(name, status).Inc() }

// ActivityDone implements durable.Observer.
func (m *Metrics) ActivityDone(run durable.ActivityRun) {
	n := m.named(run.Name)
	if run.Failed {
		n.failed.Inc()
	} else {
		n.completed.Inc()
	}
	if run.Attempt > 1 {
		n.retries.Inc()
	}
	n.duration.Observe(run.Took.Seconds())
}

// TurnDone implements durable.Observer: the commit latency of turns is
// TurnCommitted's, so there is nothing more to count.
func (m *Metrics) TurnDone(durable.Turn) {}

func (m *Metrics) named(name string) *named {
	if v, ok := m.byName.Load(name); ok {
		return v.(*named)
	}
	n := &named{
		completed: m.activities.WithLabelValues(name, "completed"),
		failed:    m.activities.WithLabelValues(name, "failed"),
		retries:   m.retries.WithLabelValues(name),
		duration:  m.activityTime.WithLabelValues(name),
	}
	v, _ := m.byName.LoadOrStore(name, n)
	return v.(*named)
}

// TurnCommitted implements durable.Observer.
func (m *Metrics) TurnCommitted(took time.Duration, err error) {
	if err != nil {
		m.turnErrors.Inc()
		return
	}
	m.turnCommit.Observe(took.Seconds())
}

// StoreCommitted implements durable.Observer.
func (m *Metrics) StoreCommitted(partition int, took time.Duration, batches int) {
	m.storeCommit.Observe(took.Seconds())
	m.storeBatches.Observe(float64(batches))
}

// ActorStarted implements durable.Observer.
func (m *Metrics) ActorStarted(kind string) {
	if g, ok := m.inMemoryKinds[kind]; ok {
		g.Inc()
	}
}

// ActorStopped implements durable.Observer.
func (m *Metrics) ActorStopped(kind string) {
	if g, ok := m.inMemoryKinds[kind]; ok {
		g.Dec()
		m.stopKinds[kind].Inc()
	}
}

// TimerFired implements durable.Observer.
func (m *Metrics) TimerFired(lag time.Duration) { m.timerLag.Observe(max(lag, 0).Seconds()) }

// nodeCollector reads the runtime's NodeStats at scrape time.
type nodeCollector struct{ rt *durable.Runtime }

var (
	descActivitiesRunning = prometheus.NewDesc("durable_activities_running", "Activities running on the node (holding a slot).", nil, nil)
	descActivitySlots     = prometheus.NewDesc("durable_activity_slots", "Activities the node runs at once at most.", nil, nil)
	descActivitiesWaiting = prometheus.NewDesc("durable_activities_waiting_instances", "Instances waiting for an activity slot.", nil, nil)
	descPartitions        = prometheus.NewDesc("durable_partitions_hosted", "Partitions of the task hub this node serves.", nil, nil)
	descCommits           = prometheus.NewDesc("durable_store_commits_total", "Commits (batches) written by the hosted partitions since the store opened.", nil, nil)
	descTransactions      = prometheus.NewDesc("durable_store_transactions_total", "Store transactions (one fsync each in sync mode) of the hosted partitions since the store opened.", nil, nil)
	descReady             = prometheus.NewDesc("durable_node_ready", "1 when the node serves requests.", nil, nil)
	descPartitionsDown    = prometheus.NewDesc("durable_partitions_down", "Partitions whose store could not be opened (damaged files): they serve nothing until repaired.", nil, nil)
)

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descActivitiesRunning, descActivitySlots, descActivitiesWaiting, descPartitions, descCommits, descTransactions, descReady, descPartitionsDown} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.rt.NodeStats()
	ready := 0.0
	if st.Ready {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descActivitiesRunning, prometheus.GaugeValue, float64(st.ActivitiesRunning))
	ch <- prometheus.MustNewConstMetric(descActivitySlots, prometheus.GaugeValue, float64(st.ActivitySlots))
	ch <- prometheus.MustNewConstMetric(descActivitiesWaiting, prometheus.GaugeValue, float64(st.ActivitiesWaiting))
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(len(st.Hosted)))
	ch <- prometheus.MustNewConstMetric(descCommits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(descTransactions, prometheus.CounterValue, float64(st.Transactions))
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	ch <- prometheus.MustNewConstMetric(descPartitionsDown, prometheus.GaugeValue, float64(len(st.PartitionsDown)))
}
