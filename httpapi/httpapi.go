// Package httpapi serves the Azure Durable Functions HTTP API over a
// durable.Client, so the habits, scripts and client libraries of Durable
// Functions (its `durable-functions` npm client among them) work unchanged.
//
// A Handler serves the API under /runtime/webhooks/durabletask/ (where the
// Functions host serves it) and under /durabletask/ (the path of the host's
// local RPC endpoint, which clients configured with an rpcBaseUrl use), plus
// the tutorial's starter route /api/orchestrators/{functionName}:
//
//	api := httpapi.New(rt.Client(), httpapi.Options{APIKey: key})
//	srv := &http.Server{Addr: "127.0.0.1:7071", Handler: api}
//	srv.RegisterOnShutdown(api.StopWaits)
//
// Routes, status codes, headers and JSON field names follow the Durable
// Functions extension 2.x (HttpApiHandler). Where it is loose, this package
// is stricter and says so with a 4xx: a malformed query parameter is a 400,
// not ignored. Choices where Durable Functions has no single answer:
//
//   - starting an instance whose id is pending or running: 409 Conflict (as
//     the extension does for OrchestrationAlreadyExistsException);
//   - rewinding: 410 for a Completed, Terminated or Canceled instance (the
//     HTTP API reference), 412 for one that is still running (the code the
//     npm client knows for "only failed instances can be rewound");
//   - purging an instance that has not finished: 412 Precondition Failed,
//     as newer extensions do ("only orchestrations in a terminal state can
//     be purged");
//   - reading an entity of an unregistered name: 404 like any entity
//     without state (the extension says 400; its docs say 404);
//   - the runtime shutting down: 503.
//
// The entity routes serve the runtime's entities (Options.Entities, by
// default the client): signal (POST or DELETE entities/{name}/{key}), read
// (GET entities/{name}/{key}, key "$" for the empty key) and list (GET
// entities[/{name}]).
//
// Every error answer has a JSON body {"Message": ..., "ErrorCode": ...}; an
// unexpected error is a 500 whose details go to the log, never to the caller.
//
// The handler is meant to be mounted at the root of a server: the URLs it
// returns are absolute, built from the request's Host (and scheme), always
// under /runtime/webhooks/durabletask/.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi/ui"
)

// Paths the Handler serves.
const (
	// WebhookBase is where the Functions host serves the API; the URLs the
	// Handler returns point here.
	WebhookBase = "/runtime/webhooks/durabletask"
	// RPCBase serves the same routes at the path of the Functions host's
	// local RPC endpoint (a client's rpcBaseUrl).
	RPCBase = "/durabletask"
	// StarterBase is the tutorial's HttpStart route:
	// GET or POST /api/orchestrators/{functionName}.
	StarterBase = "/api/orchestrators"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes = durable.DefaultMaxPayloadBytes
	DefaultTaskHub      = "durable"
	DefaultConnection   = "Storage"
	DefaultMaxWait      = 5 * time.Minute
	DefaultPageSize     = 100
)

// Options configure a Handler. The zero value is usable: no API key, a 1 MiB
// body limit.
type Options struct {
	// APIKey, when set, is required on every request, as the `code` query
	// parameter or the `x-functions-key` header (Durable Functions' two
	// ways), and the status URLs the handler returns carry it. It is
	// compared in constant time. Clients configured with an rpcBaseUrl
	// cannot send a key: give them the management URL templates instead.
	APIKey string
	// MaxBodyBytes bounds a request body (default DefaultMaxBodyBytes);
	// a larger one is answered 413. The runtime's own
	// Options.MaxPayloadBytes still applies to what is accepted.
	MaxBodyBytes int64
	// TaskHub and Connection are the taskHub and connection query
	// parameters of the URLs the handler returns (defaults "durable" and
	// "Storage"). Requests may carry any: a Handler serves one task hub.
	TaskHub, Connection string
	// MaxWait caps the `timeout` of a start or restart that waits for
	// completion (default 5 minutes): a longer timeout waits MaxWait.
	MaxWait time.Duration
	// PageSize is the page size of a listing without `top` (default 100).
	PageSize int
	// TrustForwardedHeaders builds the returned URLs from the
	// X-Forwarded-Host and X-Forwarded-Proto headers when both are present.
	// Turn it on only behind a proxy that sets them.
	TrustForwardedHeaders bool
	// Entities serves the entity routes (default: the client).
	Entities Entities
	// Node, when set, serves the node's health at GET {base}/node (the
	// dashboard's node page reads it); a *durable.Runtime is one.
	Node Node
	// Metrics, when set, is served at GET /metrics behind the API key,
	// which a scraper may also send as "Authorization: Bearer KEY" (what
	// Prometheus' scrape_config authorization sends); metrics.Handler is
	// one.
	Metrics http.Handler
	// Dashboard serves the dashboard (package ui) at /ui/: a page that
	// uses this API as any client would, with the API key it asks for.
	Dashboard bool
	// Logger receives panics, unexpected errors (and, at debug level, every
	// rejected request). Default slog.Default().
	Logger *slog.Logger
}

// Handler is the Durable Functions HTTP API over a durable.Client.
type Handler struct {
	c       *durable.Client
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	keyHash [sha256.Size]byte
	ui      http.Handler

	// stopped ends the waits for completion in progress (StopWaits).
	stopped  context.Context
	stopOnce sync.Once
	stop     context.CancelFunc
}

// New returns the HTTP API over c.
func New(c *durable.Client, opts Options) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.TaskHub == "" {
		opts.TaskHub = DefaultTaskHub
	}
	if opts.Connection == "" {
		opts.Connection = DefaultConnection
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Entities == nil {
		opts.Entities = c
	}
	h := &Handler{c: c, opts: opts, log: opts.Logger, mux: http.NewServeMux()}
	h.keyHash = sha256.Sum256([]byte(opts.APIKey))
	h.ui = ui.Handler(DashboardPath)
	h.stopped, h.stop = context.WithCancel(context.Background())
	h.routes()
	return h
}

func (h *Handler) routes() {
	m := h.mux
	for _, b := range []string{WebhookBase, RPCBase} {
		m.HandleFunc("POST "+b+"/orchestrators/{functionName}", h.start)
		m.HandleFunc("POST "+b+"/orchestrators/{functionName}/{instanceId}", h.start)

		m.HandleFunc("GET "+b+"/instances", h.list)
		m.HandleFunc("DELETE "+b+"/instances", h.purgeMany)
		m.HandleFunc("GET "+b+"/instances/{instanceId}", h.status)
		m.HandleFunc("DELETE "+b+"/instances/{instanceId}", h.purge)
		m.HandleFunc("POST "+b+"/instances/{instanceId}/raiseEvent/{eventName}", h.raiseEvent)
		m.HandleFunc("POST "+b+"/instances/{instanceId}/{operation}", h.operation)

		m.HandleFunc("GET "+b+"/node", h.node)
		m.HandleFunc("GET "+b+"/entities", h.listEntities)
		m.HandleFunc("GET "+b+"/entities/{entityName}", h.listEntities)
		m.HandleFunc("GET "+b+"/entities/{entityName}/{entityKey}", h.readEntity)
		// Without a key segment the key is empty, as in Durable Functions.
		m.HandleFunc("POST "+b+"/entities/{entityName}", h.signalEntity)
		m.HandleFunc("POST "+b+"/entities/{entityName}/{entityKey}", h.signalEntity)
		m.HandleFunc("DELETE "+b+"/entities/{entityName}", h.signalEntity)
		m.HandleFunc("DELETE "+b+"/entities/{entityName}/{entityKey}", h.signalEntity)
	}
	if h.opts.Metrics != nil {
		m.Handle("GET "+MetricsPath, h.opts.Metrics)
	}
	m.HandleFunc("GET "+StarterBase+"/{functionName}", h.starter)
	m.HandleFunc("POST "+StarterBase+"/{functionName}", h.starter)
	// Anything else, a known path with another method included, is a 404
	// as in Durable Functions (not the mux's 405).
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, http.StatusNotFound, "NotFound", "no such route: "+r.Method+" "+r.URL.Path)
	})
}

// ServeHTTP authenticates the request, bounds its body, recovers from
// panics, and routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	defer h.recoverPanic(rw, r)
	if h.serveDashboard(rw, r) {
		return
	}
	if !h.authorized(r) {
		h.fail(rw, r, http.StatusUnauthorized, "Unauthorized", "missing or wrong API key (code query parameter or x-functions-key header)")
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(rw, r.Body, h.opts.MaxBodyBytes)
	}
	h.mux.ServeHTTP(rw, trimTrailingSlash(r))
}

// StopWaits ends every wait for completion in progress (a start or restart
// with `timeout`) with the 202 check-status answer it would give on timeout,
// and makes later waits answer at once. Register it with
// http.Server.RegisterOnShutdown so long polls do not hold up a shutdown.
func (h *Handler) StopWaits() { h.stopOnce.Do(h.stop) }

// authorized compares SHA-256 digests so the comparison takes the same time
// whatever the length of the key given.
func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.APIKey == "" {
		return true
	}
	given := r.Header.Get("x-functions-key")
	if given == "" {
		given = r.URL.Query().Get("code")
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); given == "" && ok {
		given = bearer
	}
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], h.keyHash[:]) == 1
}

func (h *Handler) recoverPanic(w *responseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	h.log.Error("httpapi: panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
	if !w.wroteHeader {
		h.fail(w, r, http.StatusInternalServerError, "InternalError", "something went wrong while processing your request")
	}
}

// trimTrailingSlash makes /instances/ and /instances the same route, as in
// Durable Functions (its handler trims the path before matching); the npm
// client lists and purges with the trailing slash.
func trimTrailingSlash(r *http.Request) *http.Request {
	p := r.URL.Path
	if len(p) <= 1 || !strings.HasSuffix(p, "/") {
		return r
	}
	u := *r.URL
	u.Path = strings.TrimRight(p, "/")
	if u.Path == "" {
		u.Path = "/"
	}
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/")
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}

// responseWriter remembers whether the header was written, so a recovered
// panic answers 500 only if nothing was sent yet.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
