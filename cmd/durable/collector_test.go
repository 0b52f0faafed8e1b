package main

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP trace receiver on loopback, over http/protobuf or
// grpc, that keeps what it received.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	endpoint string

	mu    sync.Mutex
	spans map[string]receivedSpan // by span name
}

// receivedSpan is what a test checks of a span the collector received.
type receivedSpan struct {
	trace, instance, service string
}

func newCollector(t *testing.T, protocol string) *collector {
	t.Helper()
	c := &collector{spans: map[string]receivedSpan{}}
	switch protocol {
	case "http/protobuf":
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			req := &coltracepb.ExportTraceServiceRequest{}
			if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || err != nil || proto.Unmarshal(body, req) != nil {
				http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
				return
			}
			c.keep(req)
			out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write(out)
		}))
		t.Cleanup(srv.Close)
		c.endpoint = srv.URL
	case "grpc":
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		coltracepb.RegisterTraceServiceServer(srv, c)
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		c.endpoint = "http://" + lis.Addr().String() // http: without TLS
	default:
		t.Fatalf("protocol %q", protocol)
	}
	return c
}

// Export implements the OTLP gRPC trace service.
func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.keep(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) keep(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		service := attr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans[s.GetName()] = receivedSpan{trace: hex.EncodeToString(s.GetTraceId()), instance: attr(s.GetAttributes(), "durable.instance_id"), service: service}
			}
		}
	}
}

func (c *collector) received() map[string]receivedSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]receivedSpan, len(c.spans))
	for k, v := range c.spans {
		out[k] = v
	}
	return out
}

func attr(kvs []*commonpb.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}
