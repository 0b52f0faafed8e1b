// Command functionapp is the Azure Durable Functions tutorial's function app
// in Go, as one program: the HTTP starter HttpStart, the orchestrator
// Orchestrator and the activity Hello, behind the Durable Functions HTTP API.
//
//	go run ./examples/functionapp          # http://127.0.0.1:7071, data in data/functionapp
//	curl -X POST http://localhost:7071/api/orchestrators/Orchestrator
//
// then follow the statusQueryGetUri of the answer to the output. See
// README.md beside this file.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/httpapi"
	"github.com/durable-go/durable/orchestration"
)

// Orchestrator calls Hello for three cities in turn and returns the
// greetings.
func Orchestrator(ctx *orchestration.Context) (any, error) {
	var outputs []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		greeting, err := orchestration.Await[string](ctx.CallActivity("Hello", city))
		if err != nil {
			return nil, err
		}
		outputs = append(outputs, greeting)
	}
	return outputs, nil
}

// Hello greets a city.
func Hello(_ context.Context, city string) (string, error) {
	return "Hello " + city + "!", nil
}

// HttpStart starts the orchestrator named in the route, with the request's
// JSON body (if any) as its input, and answers 202 with the check-status
// payload: the URLs to query, raise events to, terminate, suspend, resume,
// restart and purge the new instance.
func HttpStart(client *durable.Client, api *httpapi.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, durable.DefaultMaxPayloadBytes))
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		var input any
		if len(body) > 0 {
			input = json.RawMessage(body) // invalid JSON is a 400
		}
		id, err := client.Start(r.Context(), r.PathValue("functionName"), input)
		if err != nil {
			api.WriteError(w, r, err)
			return
		}
		slog.Info("started orchestration", "name", r.PathValue("functionName"), "id", id)
		api.WriteCheckStatusResponse(w, r, id)
	}
}

// newHandler serves the function app: HttpStart at
// /api/orchestrators/{functionName}, and the Durable Functions HTTP API
// (where the statusQueryGetUri and the other returned URLs point).
func newHandler(client *durable.Client) http.Handler {
	api := httpapi.New(client, httpapi.Options{})
	mux := http.NewServeMux()
	mux.Handle("/", api)
	mux.Handle("/api/orchestrators/{functionName}", HttpStart(client, api))
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:7071", "address to listen on")
	dir := flag.String("data", "data/functionapp", "directory of the task hub (created if missing)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "functionapp:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr, dir string) error {
	rt, err := durable.Open(durable.Options{Dir: dir})
	if err != nil {
		return err
	}
	if err := rt.RegisterOrchestrator("Orchestrator", Orchestrator); err != nil {
		return err
	}
	if err := rt.RegisterActivity("Hello", Hello); err != nil {
		return err
	}
	if err := rt.Start(); err != nil {
		return err
	}
	srv := &http.Server{Addr: addr, Handler: newHandler(rt.Client()), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	slog.Info("function app listening", "url", "http://"+addr, "try", "curl -X POST http://"+addr+"/api/orchestrators/Orchestrator")

	select {
	case <-ctx.Done():
	case err = <-served:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if rerr := rt.Shutdown(sctx); rerr != nil && err == nil {
		err = rerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
