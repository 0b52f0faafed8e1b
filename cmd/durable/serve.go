package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/cluster"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/metrics"
	"github.com/durable-go/durable/tracing"
)

// shutdownTimeout bounds a clean shutdown: in-flight requests, then the
// runtime (commits in flight, then the store).
const shutdownTimeout = 15 * time.Second

func (c *cli) serve(ctx context.Context, args []string) error {
	fs := c.flags("serve", "[FLAGS]", "Runs a durable node hosting the sample function app (orchestrators Orchestrator,\n"+
		"HelloCities, FanOutFanIn, WaitForApproval, Tally; entity Counter) behind the Durable Functions\n"+
		"HTTP API, until SIGINT or SIGTERM.")
	addr := fs.String("addr", "127.0.0.1:7071", "address to listen on (loopback by default)")
	dir := fs.String("data", "data/durable", "directory of the task hub (created if missing)")
	memory := fs.Bool("memory", false, "keep the task hub in memory (lost on exit) instead of --data")
	key := fs.String("api-key", c.getenv("DURABLE_API_KEY"), "require this API key (code= or x-functions-key) on every request; default $DURABLE_API_KEY")
	dashboard := fs.Bool("dashboard", true, "serve the dashboard at /ui/ and the node's health at "+httpapi.WebhookBase+"/node")
	metricsOn := fs.Bool("metrics", true, "serve Prometheus metrics at /metrics (behind --api-key, also as Authorization: Bearer)")
	traces := fs.String("traces", or(c.getenv("OTEL_TRACES_EXPORTER"), "none"), "export OpenTelemetry spans of turns and activities: "+traceExporters+" (configured by the OTEL_EXPORTER_OTLP_* variables); default $OTEL_TRACES_EXPORTER, else none")
	pprofOn := fs.Bool("pprof", false, "serve net/http/pprof's profiles at /debug/pprof/ to loopback clients only")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	partitions := fs.Int("partitions", 0, "partitions of a new task hub (default 4; 12 with --cluster-addr); fixed once created")
	clusterAddr := fs.String("cluster-addr", "", "join a cluster: this node's cluster port, host:port (every node gets the same --data and --cluster-peers)")
	clusterPeers := fs.String("cluster-peers", "", "the cluster ports of the nodes, comma-separated host:port")
	tlsCert := fs.String("cluster-tls-cert", "", "PEM certificate of this node for mutual TLS on the cluster port")
	tlsKey := fs.String("cluster-tls-key", "", "PEM key of --cluster-tls-cert")
	tlsCA := fs.String("cluster-tls-ca", "", "PEM certificate of the CA that signs every node's certificate")
	grpcAddr := fs.String("grpc", "", "also serve the Durable Task sidecar gRPC protocol (the Durable Task SDKs' clients and workers) on host:port, e.g. 127.0.0.1:4001")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(pos); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usagef("bad --log-level %q", *level)
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: lvl}))

	opts := durable.Options{Dir: *dir, Logger: logger, Partitions: *partitions}
	var m *metrics.Metrics
	if *metricsOn {
		m = metrics.New()
		opts.Observer = m
	}
	tp, err := c.tracerProvider(ctx, *traces)
	if err != nil {
		return err
	}
	if tp != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				logger.Warn("flush spans", "err", err)
			}
		}()
		var next durable.Observer
		if m != nil {
			next = m
		}
		opts.Observer = tracing.New(tp, next)
	}
	where := *dir
	if *memory {
		opts.Dir, where = "", "memory"
	}
	if *clusterAddr != "" {
		if *memory {
			return usagef("--cluster-addr needs a shared --data directory, not --memory")
		}
		cc := &cluster.Config{Addr: *clusterAddr}
		for _, p := range strings.Split(*clusterPeers, ",") {
			if p = strings.TrimSpace(p); p != "" {
				cc.Peers = append(cc.Peers, p)
			}
		}
		switch n := btoi(*tlsCert != "") + btoi(*tlsKey != "") + btoi(*tlsCA != ""); n {
		case 0:
		case 3:
			cc.TLS = &cluster.TLSFiles{CertFile: *tlsCert, KeyFile: *tlsKey, CAFile: *tlsCA}
		default:
			return usagef("--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together")
		}
		opts.Cluster = cc
	} else if *clusterPeers != "" || *tlsCert != "" || *tlsKey != "" || *tlsCA != "" {
		return usagef("--cluster-peers and --cluster-tls-* need --cluster-addr")
	}
	rt, err := durable.Open(opts)
	if err != nil {
		return err
	}
	if err := registerSampleApp(rt); err != nil {
		_ = rt.Close()
		return err
	}
	grpcSrv, err := newGRPCSidecar(rt, *grpcAddr, logger)
	if err != nil {
		_ = rt.Close()
		return err
	}
	if err := rt.Start(); err != nil {
		grpcSrv.stop(context.Background())
		_ = rt.Close()
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		grpcSrv.stop(context.Background())
		_ = rt.Close()
		return err
	}
	grpcSrv.serve()
	hopts := httpapi.Options{APIKey: *key, Logger: logger, Dashboard: *dashboard}
	if *dashboard {
		hopts.Node = rt
	}
	if m != nil {
		m.Watch(rt)
		hopts.Metrics = m.Handler()
	}
	api := httpapi.New(rt.Client(), hopts)
	mux := http.NewServeMux()
	mux.Handle("/", api)
	if *pprofOn {
		mux.Handle("/debug/pprof/", pprofHandler())
	}
	mux.HandleFunc("GET /healthz", healthz(rt))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Long polls (start with ?timeout=) answer 202 at once when shutting down.
	srv.RegisterOnShutdown(api.StopWaits)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	logger.Info("durable node listening", "url", url, "data", where, "api_key", *key != "")
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); *key == "" && !net.ParseIP(host).IsLoopback() {
		logger.Warn("listening beyond loopback without --api-key: anyone who can reach it can start and terminate instances", "addr", ln.Addr().String())
	}
	fmt.Fprintf(c.stderr, "Try: curl -X POST %s%s/Orchestrator\n", url, httpapi.StarterBase)
	if *dashboard {
		fmt.Fprintf(c.stderr, "Dashboard: %s%s\n", url, httpapi.DashboardPath)
	}
	if c.onListen != nil {
		c.onListen(ln.Addr().String())
	}
	if c.onGRPCListen != nil && grpcSrv != nil {
		c.onGRPCListen(grpcSrv.addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case serveErr = <-served:
	case <-rt.Expelled():
		// The others dropped this node for good: it serves nothing they
		// accept. Exit with an error, so a supervisor starts it again
		// (a new process joins as a new member).
		logger.Error("the cluster dropped this node (a pause or a network cut longer than its drop time); shutting down so that it can be started again")
		serveErr = errExpelled
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var errs []error
	grpcSrv.stop(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop HTTP server: %w", err))
		_ = srv.Close()
	}
	if err := rt.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop runtime: %w", err))
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// errExpelled ends serve when the cluster dropped the node.
var errExpelled = errors.New("dropped by the cluster: start the node again to rejoin")

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// healthz serves GET /healthz: 503 "starting" until the node serves
// requests (in a cluster, until every partition is placed and answers);
// then 200 "ok", or, while partitions are down (their store could not be
// opened), 200 with a body whose first line is "degraded" and whose next
// lines name each down partition, its directory and why. One partition
// down is still 200: the node serves the others, and a restart or a load
// balancer taking the node out would not repair the partition but would
// stop the healthy ones. A node that opens no partition at all does not
// start (durable.Open fails), so it never answers.
func healthz(rt *durable.Runtime) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !rt.Ready() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		down := rt.PartitionsDown()
		if len(down) == 0 {
			fmt.Fprintln(w, "ok")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "degraded")
		for _, d := range down {
			fmt.Fprintf(w, "partition %d down at %s: %s\n", d.Partition, d.Dir, d.Error)
		}
	}
}
