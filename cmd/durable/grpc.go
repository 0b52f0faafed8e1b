package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/sidecar"
)

// grpcSidecar is serve's --grpc listener: the Durable Task sidecar
// protocol, for the Durable Task SDKs' clients and workers.
type grpcSidecar struct {
	ln  net.Listener
	g   *grpc.Server
	s   *sidecar.Server
	log *slog.Logger
}

// newGRPCSidecar attaches the sidecar to rt (before rt.Start, so recovered
// activities find the workers' queue) and listens on addr; nil for no addr.
func newGRPCSidecar(rt *durable.Runtime, addr string, logger *slog.Logger) (*grpcSidecar, error) {
	if addr == "" {
		return nil, nil
	}
	g, s, err := sidecar.NewServer(rt, sidecar.Options{Logger: logger})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--grpc: %w", err)
	}
	return &grpcSidecar{ln: ln, g: g, s: s, log: logger}, nil
}

// serve serves in the background once the runtime has started.
func (gs *grpcSidecar) serve() {
	if gs == nil {
		return
	}
	go func() {
		if err := gs.g.Serve(gs.ln); err != nil {
			gs.log.Error("sidecar gRPC server stopped", "err", err)
		}
	}()
	gs.log.Info("durable sidecar gRPC listening", "addr", gs.ln.Addr().String())
	if host, _, _ := net.SplitHostPort(gs.ln.Addr().String()); !net.ParseIP(host).IsLoopback() {
		gs.log.Warn("the gRPC sidecar has no authentication: anyone who can reach it can start instances and serve activities", "addr", gs.ln.Addr().String())
	}
}

// stop ends the workers' streams, then the server, before ctx ends.
func (gs *grpcSidecar) stop(ctx context.Context) {
	if gs == nil {
		return
	}
	gs.s.Close()
	done := make(chan struct{})
	go func() { gs.g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		gs.g.Stop()
		<-done
	}
	_ = gs.ln.Close() // already closed if it served
}

func (gs *grpcSidecar) addr() string {
	if gs == nil {
		return ""
	}
	return gs.ln.Addr().String()
}
