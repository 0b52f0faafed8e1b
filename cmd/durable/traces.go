package main

import (
	"fmt"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// tracerProvider returns the provider of serve's --traces exporter, nil
// for none. The resource comes from the usual OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES (the SDK's default resource reads them).
//
// OTLP is not offered: OpenTelemetry's OTLP exporters need grpc v1.79,
// and this module pins v1.60.1 (protoactor's). A program that embeds
// durable can use them with package tracing.
func (c *cli) tracerProvider(exporter string) (*sdktrace.TracerProvider, error) {
	switch exporter {
	case "none", "":
		return nil, nil
	case "console":
		exp, err := stdouttrace.New(stdouttrace.WithWriter(c.stderr), stdouttrace.WithPrettyPrint())
		if err != nil {
			return nil, fmt.Errorf("console span exporter: %w", err)
		}
		return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp)), nil
	}
	return nil, usagef("--traces %q: want none or console (OTLP is not built into durable serve; see package tracing)", exporter)
}
