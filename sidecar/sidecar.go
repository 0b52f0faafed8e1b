// Package sidecar serves the Durable Task sidecar gRPC protocol
// (TaskHubSidecarService, the protocol that the Durable Task SDKs for
// JavaScript, Python, Java, .NET and Go speak to their backend) over a
// durable Runtime, so that clients and workers written in other languages
// use durable's engine, journal and cluster.
//
// The client RPCs (start, status, waits, events, control, queries, purge,
// history, entities) go through the Runtime's public Client, never the
// store. The worker RPCs lease work items to connected workers: an
// orchestrator, activity or entity that no Go function is registered for
// is served by the workers. An activity's CompleteActivityTask result goes
// back into its instance through the same activity path as a Go
// activity's; an orchestration turn (past and new events out, actions back
// through CompleteOrchestratorTask) is committed by the instance actor
// exactly as a Go turn is; an entity batch (state and operations out,
// results, new state and actions back through CompleteEntityTask) by the
// entity actor exactly as a Go batch is (see worker.go for the leases,
// entities.go for entities, package actors for the turn and the batch).
// What durable does not do answers codes.Unimplemented with a message that
// says so.
//
// Typical use, with a Runtime that is not started yet:
//
//	s, err := sidecar.New(rt, sidecar.Options{})
//	rt.Start()
//	g := grpc.NewServer()
//	s.Register(g)
//	go g.Serve(ln)
//	...
//	s.Close()        // ends the workers' streams
//	g.GracefulStop()
package sidecar

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/durable-go/durable"
	pb "github.com/durable-go/durable/sidecar/protos"
)

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives the server's logs (default slog.Default()).
	Logger *slog.Logger
	// PingInterval is how often an idle work-item stream gets a health
	// ping (default 10s), so a worker notices a dead connection and a
	// dead worker is found by the failed send.
	PingInterval time.Duration
	// LeaseTimeout is how long a worker may hold a work item (an activity,
	// an orchestration turn, an entity batch) before it is dispatched again
	// to another worker (default 5m). Its
	// completion after that is rejected as stale.
	LeaseTimeout time.Duration
}

// Server implements TaskHubSidecarService over a durable Runtime.
type Server struct {
	pb.UnimplementedTaskHubSidecarServiceServer

	client *durable.Client
	log    *slog.Logger
	opts   Options
	work   *dispatcher

	closeOnce sync.Once
	closed    chan struct{}
}

// New makes the server of rt and attaches it as rt's remote-worker host:
// from then on an orchestrator, activity or entity no Go function is
// registered for is served by the workers connected to this server. Call it before
// rt.Start, so that work recovered on start finds the workers' queue.
func New(rt *durable.Runtime, opts Options) (*Server, error) {
	if rt == nil {
		return nil, errors.New("sidecar: nil runtime")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 10 * time.Second
	}
	if opts.LeaseTimeout <= 0 {
		opts.LeaseTimeout = 5 * time.Minute
	}
	s := &Server{client: rt.Client(), log: opts.Logger, opts: opts, closed: make(chan struct{})}
	s.work = newDispatcher(opts.LeaseTimeout)
	if err := rt.SetRemoteActivities(s.work.run); err != nil {
		return nil, err
	}
	if err := rt.SetRemoteOrchestrators(s.work.runTurn, s.work.known); err != nil {
		return nil, err
	}
	if err := rt.SetRemoteEntities(s.work.runEntityBatch, s.work.knownEntity); err != nil {
		return nil, err
	}
	return s, nil
}

// Register registers the service on g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	pb.RegisterTaskHubSidecarServiceServer(g, s)
}

// NewServer returns a gRPC server with the service of rt registered, and
// the sidecar Server to Close before stopping it.
func NewServer(rt *durable.Runtime, opts Options, grpcOpts ...grpc.ServerOption) (*grpc.Server, *Server, error) {
	s, err := New(rt, opts)
	if err != nil {
		return nil, nil, err
	}
	g := grpc.NewServer(grpcOpts...)
	s.Register(g)
	return g, s, nil
}

// Close ends the workers' GetWorkItems streams (their leased items are
// dispatched again when a worker reconnects) and lets waiting activities
// go: call it before the gRPC server's GracefulStop, which waits for open
// streams.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.work.close()
	})
}

// Hello answers the SDKs' connection check.
func (s *Server) Hello(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// The RPCs durable does not serve, each with the reason.

// CreateTaskHub is not supported: a task hub is a data directory, created
// when the node opens it.
func (s *Server) CreateTaskHub(context.Context, *pb.CreateTaskHubRequest) (*pb.CreateTaskHubResponse, error) {
	return nil, unsupported("CreateTaskHub", "a task hub is the node's data directory, created when the node opens it")
}

// DeleteTaskHub is not supported: delete the data directory of a stopped
// node instead.
func (s *Server) DeleteTaskHub(context.Context, *pb.DeleteTaskHubRequest) (*pb.DeleteTaskHubResponse, error) {
	return nil, unsupported("DeleteTaskHub", "stop the node and delete its data directory")
}

// SkipGracefulOrchestrationTerminations is not supported; TerminateInstance
// ends an instance at once.
func (s *Server) SkipGracefulOrchestrationTerminations(context.Context, *pb.SkipGracefulOrchestrationTerminationsRequest) (*pb.SkipGracefulOrchestrationTerminationsResponse, error) {
	return nil, unsupported("SkipGracefulOrchestrationTerminations", "TerminateInstance already ends an instance at once")
}
