package main

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// traceExporters are the values of serve's --traces (and of
// OTEL_TRACES_EXPORTER, its default).
const traceExporters = "none, console (JSON on stderr) or otlp"

// tracerProvider returns the provider of serve's --traces exporter, nil
// for none. The resource comes from the usual OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (service.name durable without them), the
// batching from OTEL_BSP_*.
//
// otlp is OpenTelemetry's standard OTLP exporter, configured as everywhere
// by the OTEL_EXPORTER_OTLP_* variables (endpoint, headers, certificates,
// compression, timeout; the TRACES_ ones first): the protocol is
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL,
// http/protobuf (the default, to localhost:4318) or grpc (localhost:4317).
func (c *cli) tracerProvider(ctx context.Context, exporter string) (*sdktrace.TracerProvider, error) {
	var exp sdktrace.SpanExporter
	switch exporter {
	case "none", "":
		return nil, nil
	case "console":
		var err error
		if exp, err = stdouttrace.New(stdouttrace.WithWriter(c.stderr), stdouttrace.WithPrettyPrint()); err != nil {
			return nil, fmt.Errorf("console span exporter: %w", err)
		}
	case "otlp":
		var err error
		if exp, err = c.otlpExporter(ctx); err != nil {
			return nil, err
		}
	default:
		return nil, usagef("--traces %q: want %s", exporter, traceExporters)
	}
	// The resource is read now, not from the SDK's default made once per
	// process: service.name is durable unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise.
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "durable")),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("trace resource from OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// otlpExporter makes the OTLP exporter of the protocol the environment
// asks for. Making it does not connect: an unreachable collector costs
// dropped spans and a logged error, never the node.
func (c *cli) otlpExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	protocol, from := c.getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, from = c.getenv("OTEL_EXPORTER_OTLP_PROTOCOL"), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, usagef("%s=%q: durable serve exports OTLP as http/protobuf or grpc", from, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP span exporter (%s): %w", protocol, err)
	}
	return exp, nil
}

// or returns s, or def when s is empty.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
