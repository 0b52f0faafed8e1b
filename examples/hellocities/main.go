// Command hellocities is the Durable Functions tutorial's first lab in Go: an
// orchestrator calls the activity "Hello" for Tokyo, Seattle and London in
// sequence and returns the three greetings.
//
//	go run ./examples/hellocities            # data in ./hellocities-data
//	go run ./examples/hellocities -data DIR
//
// Its data lives in a local directory: run it twice and the second run lists
// the instances of the first, still there.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/durable-go/durable"
	"github.com/durable-go/durable/orchestration"
)

// Orchestrator calls Hello for each city in turn.
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
func Hello(ctx context.Context, city string) (string, error) {
	return "Hello " + city + "!", nil
}

func main() {
	dir := flag.String("data", "hellocities-data", "directory of the task hub (created if missing)")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintln(os.Stderr, "hellocities:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := durable.Open(durable.Options{Dir: dir, Logger: logger})
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := rt.RegisterOrchestrator("Orchestrator", Orchestrator); err != nil {
		return err
	}
	if err := rt.RegisterActivity("Hello", Hello); err != nil {
		return err
	}
	if err := rt.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := rt.Client()

	earlier, err := client.List(ctx, durable.Query{PageSize: 100})
	if err != nil {
		return err
	}
	if len(earlier.Instances) > 0 {
		fmt.Printf("%d earlier instance(s) in %s:\n", len(earlier.Instances), dir)
		for _, st := range earlier.Instances {
			fmt.Printf("  %s  %-9s  created %s  output %s\n", st.InstanceID, st.RuntimeStatus, st.CreatedAt.Format(time.RFC3339), st.Output)
		}
	}

	id, err := client.Start(ctx, "Orchestrator", nil)
	if err != nil {
		return err
	}
	fmt.Println("started instance", id)
	st, err := client.WaitForCompletion(ctx, id)
	if err != nil {
		return err
	}
	fmt.Println("status:", st.RuntimeStatus)
	fmt.Println("output:", string(st.Output))
	if st.Failure != nil {
		fmt.Println("failure:", st.Failure.Error())
	}
	return nil
}
