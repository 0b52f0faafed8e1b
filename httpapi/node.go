package httpapi

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi/ui"
)

// Node reports the health of the node that serves the API; a
// *durable.Runtime is one. Options.Node serves it at GET {base}/node.
type Node interface {
	NodeStats() durable.NodeStats
}

// NodePayload is the answer of GET {base}/node (not a Durable Functions
// route). Durations are in seconds; counters are cumulative since the node
// opened its store, so a rate is the difference of two answers.
type NodePayload struct {
	Ready                bool    `json:"ready"`
	Partitions           int     `json:"partitions"`
	HostedPartitions     []int   `json:"hostedPartitions"`
	Actors               int     `json:"actors"`
	InMemory             int     `json:"inMemory"`
	MaxInMemory          int     `json:"maxInMemory"`
	ActivitiesRunning    int     `json:"activitiesRunning"`
	ActivitySlots        int     `json:"activitySlots"`
	ActivitiesWaiting    int     `json:"activitiesWaiting"`
	Commits              int64   `json:"commits"`
	Transactions         int64   `json:"transactions"`
	CommitSeconds        float64 `json:"commitSeconds"`
	MeanCommitLatencySec float64 `json:"meanCommitLatencySeconds"`
	Goroutines           int     `json:"goroutines"`
	HeapBytes            uint64  `json:"heapBytes"`
	UptimeSeconds        float64 `json:"uptimeSeconds"`
	// PartitionsDown lists the partitions whose store could not be
	// opened (empty on a healthy node): they serve nothing until repaired.
	PartitionsDown []PartitionDownPayload `json:"partitionsDown"`
}

// PartitionDownPayload is a partition that is down, in NodePayload.
type PartitionDownPayload struct {
	Partition int    `json:"partition"`
	Dir       string `json:"dir"`
	Error     string `json:"error"`
}

func nodePayload(st durable.NodeStats) NodePayload {
	p := NodePayload{
		Ready: st.Ready, Partitions: st.Partitions, HostedPartitions: st.Hosted, Actors: st.Actors,
		InMemory: st.InMemory, MaxInMemory: st.MaxInMemory,
		ActivitiesRunning: st.ActivitiesRunning, ActivitySlots: st.ActivitySlots, ActivitiesWaiting: st.ActivitiesWaiting,
		Commits: st.Commits, Transactions: st.Transactions, CommitSeconds: st.CommitTime.Seconds(),
		Goroutines: st.Goroutines, HeapBytes: st.HeapBytes, UptimeSeconds: st.Uptime.Seconds(),
	}
	if p.HostedPartitions == nil {
		p.HostedPartitions = []int{}
	}
	p.PartitionsDown = []PartitionDownPayload{}
	for _, d := range st.PartitionsDown {
		p.PartitionsDown = append(p.PartitionsDown, PartitionDownPayload{Partition: d.Partition, Dir: d.Dir, Error: d.Error})
	}
	if st.Transactions > 0 {
		p.MeanCommitLatencySec = st.CommitTime.Seconds() / float64(st.Transactions)
	}
	return p
}

func (h *Handler) node(w http.ResponseWriter, r *http.Request) {
	if h.opts.Node == nil {
		h.fail(w, r, http.StatusNotFound, "NotFound", "this server does not report node health")
		return
	}
	writeJSON(w, http.StatusOK, nodePayload(h.opts.Node.NodeStats()))
}

// MetricsPath is where Options.Metrics is served.
const MetricsPath = "/metrics"

// DashboardPath is where Options.Dashboard serves the dashboard.
const DashboardPath = "/ui/"

// serveDashboard serves the dashboard's files when the request is for
// them. They hold no data and no secret: the page asks for the API key and
// sends it with its API calls, so the files are served without one.
func (h *Handler) serveDashboard(w http.ResponseWriter, r *http.Request) bool {
	if !h.opts.Dashboard || (r.URL.Path != "/ui" && !strings.HasPrefix(r.URL.Path, DashboardPath)) {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.fail(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "the dashboard serves GET only")
		return true
	}
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, DashboardPath, http.StatusMovedPermanently)
		return true
	}
	if name := strings.TrimPrefix(r.URL.Path, DashboardPath); name != "" {
		if _, err := fs.Stat(ui.Files(), name); err != nil {
			h.fail(w, r, http.StatusNotFound, "NotFound", "the dashboard has no file "+name)
			return true
		}
	}
	h.ui.ServeHTTP(w, r)
	return true
}
