// Package protos holds the generated Go code of the Durable Task sidecar
// protocol (orchestrator_service.proto): the messages and the
// TaskHubSidecarService that the Durable Task SDKs speak. Package sidecar
// serves it.
package protos

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative orchestrator_service.proto
