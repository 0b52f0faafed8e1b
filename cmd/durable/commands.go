package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/durable-go/durable/httpapi"
)

// jsonArg checks a JSON argument given on the command line.
func jsonArg(what, s string) ([]byte, error) {
	if !json.Valid([]byte(s)) {
		return nil, usagef("%s %q is not JSON (quote a string: '\"Tokyo\"')", what, s)
	}
	return []byte(s), nil
}

func (c *cli) start(ctx context.Context, args []string) error {
	fs := c.flags("start", "NAME [INPUT] [FLAGS]", "Starts the orchestrator NAME with the JSON INPUT and prints its id and status URL.\n"+
		"With --wait it follows the instance, showing its progress, and prints its final status.")
	cf := c.clientFlags(fs)
	id := fs.String("id", "", "instance id (default: a new UUID)")
	input := fs.String("input", "", "JSON input (instead of the INPUT argument)")
	wait := fs.Bool("wait", false, "wait for the instance to finish, showing progress")
	timeout := fs.Duration("timeout", 0, "with --wait: give up waiting after this long (0: no limit)")
	var q url.Values
	fs.Func("version", "the orchestrator version to run (default: its default version)", func(v string) error {
		q = url.Values{"version": {v}}
		return nil
	})
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 2 && *input == "" {
		*input, pos = pos[1], pos[:1]
	}
	if err := exactly(pos, "NAME"); err != nil {
		return err
	}
	var body []byte
	if *input != "" {
		if body, err = jsonArg("input", *input); err != nil {
			return err
		}
	}
	a, err := cf.client()
	if err != nil {
		return err
	}
	path := "/orchestrators/" + url.PathEscape(pos[0])
	if *id != "" {
		path += "/" + url.PathEscape(*id)
	}
	r, err := a.do(ctx, "POST", path, q, body)
	if err != nil {
		return err
	}
	if err := r.expect(http.StatusAccepted); err != nil {
		return err
	}
	var p httpapi.CheckStatusPayload
	if err := r.decode(&p); err != nil {
		return err
	}
	if !*wait {
		if cf.json {
			return printJSON(c.stdout, r.body)
		}
		printFields(c.stdout, [][2]string{{"ID", p.ID}, {"NAME", pos[0]}, {"STATUS URL", p.StatusQueryGetURI}})
		return nil
	}
	return c.followToEnd(ctx, a, p.ID, *timeout, cf.json)
}

// followToEnd follows instance id until it ends, prints its final status
// (as JSON with asJSON) and fails unless it completed.
func (c *cli) followToEnd(ctx context.Context, a *apiClient, id string, timeout time.Duration, asJSON bool) error {
	st, raw, err := c.follow(ctx, a, id, timeout)
	if err != nil {
		return err
	}
	if asJSON {
		if err := printJSON(c.stdout, raw); err != nil {
			return err
		}
	} else {
		printStatus(c.stdout, st)
	}
	if st.RuntimeStatus != "Completed" {
		return &failedError{fmt.Sprintf("instance %s ended %s", st.InstanceID, st.RuntimeStatus)}
	}
	return nil
}

// follow polls the instance until it finishes (or timeout passes), showing
// its progress on stderr: status, activities done of those scheduled, the
// current step and the time elapsed, on one line redrawn in place on a
// terminal, one plain line per change otherwise. It returns the final
// status read with its input (the polls leave input and results out).
func (c *cli) follow(ctx context.Context, a *apiClient, id string, timeout time.Duration) (*httpapi.StatusPayload, []byte, error) {
	frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	began := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	interval, next := 100*time.Millisecond, time.Time{}
	poll := url.Values{"showInput": {"false"}, "showHistory": {"true"}}
	var st *httpapi.StatusPayload
	last := ""
	for frame := 0; ; frame++ {
		if now := time.Now(); !now.Before(next) {
			s, _, err := a.getStatus(ctx, id, poll)
			if err != nil {
				c.clearProgress()
				return nil, nil, err
			}
			st = s
			next = now.Add(interval)
			interval = min(interval*3/2, time.Second)
		}
		line := progressLine(st)
		elapsed := time.Since(began).Truncate(100 * time.Millisecond)
		if c.tty {
			fmt.Fprintf(c.stderr, "\r\033[K%c %s  %s  %s", frames[frame%len(frames)], id, line, elapsed)
		} else if line != last {
			fmt.Fprintf(c.stderr, "%s  %s  %s\n", id, line, elapsed)
		}
		last = line
		switch st.RuntimeStatus {
		case "Completed", "Failed", "Terminated", "Canceled":
			c.clearProgress()
			final, r, err := a.getStatus(ctx, id, nil)
			if err != nil {
				return nil, nil, err
			}
			return final, r.body, nil
		}
		if timeout > 0 && time.Since(began) >= timeout {
			c.clearProgress()
			return nil, nil, &failedError{fmt.Sprintf("instance %s is still %s after %s; check later with `durable status %s`", id, st.RuntimeStatus, timeout, id)}
		}
		select {
		case <-ctx.Done():
			c.clearProgress()
			return nil, nil, fmt.Errorf("stopped waiting for %s (it runs on): %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

func terminal(status string) bool {
	switch status {
	case "Completed", "Failed", "Terminated", "Canceled":
		return true
	}
	return false
}

// clock shows the time of day of an API time (UTC), or the text as given.
func clock(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("15:04:05Z")
}

// progressLine describes where an instance is, from its status and its
// history (as the API shows it, schedulings folded into completions):
// "Running  activities 3/5  Hello ×2  \"custom status\"".
func progressLine(st *httpapi.StatusPayload) string {
	var done, scheduled int
	var steps []string // the open tasks, in the order they were opened
	count := map[string]int{}
	openTimers := map[int64]string{}
	openCalls := map[int64]string{}
	if st.HistoryEvents != nil {
		for _, e := range *st.HistoryEvents {
			task := int64(-1)
			if e.TaskID != nil {
				task = *e.TaskID
			}
			switch e.EventType {
			case "TaskCompleted", "TaskFailed":
				done++
				scheduled++
			case "TaskScheduled":
				scheduled++
				if count[e.Name] == 0 {
					steps = append(steps, e.Name)
				}
				count[e.Name]++
			case "SubOrchestrationInstanceCreated":
				openCalls[task] = "sub-orchestration " + e.Name
			case "TimerCreated":
				openTimers[task] = "timer until " + clock(e.FireAt)
			case "TimerFired":
				delete(openTimers, task)
			case "EntityOperationCalled":
				openCalls[task] = "entity " + strings.TrimPrefix(e.InstanceID, "@") + " " + e.Name
			case "EntityOperationCompleted", "EntityOperationFailed":
				delete(openCalls, task)
			}
		}
	}
	var step []string
	for _, name := range steps {
		if n := count[name]; n > 1 {
			step = append(step, fmt.Sprintf("%s ×%d", name, n))
		} else {
			step = append(step, name)
		}
	}
	for _, m := range []map[int64]string{openCalls, openTimers} {
		keys := make([]int64, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, k := range keys {
			step = append(step, m[k])
		}
	}
	line := st.RuntimeStatus
	if scheduled > 0 {
		line += fmt.Sprintf("  activities %d/%d", done, scheduled)
	}
	switch {
	case terminal(st.RuntimeStatus):
		// Tasks still open when the instance ended (a timer that lost a
		// race) are no step of it.
	case len(step) > 0:
		line += "  " + truncate(strings.Join(step, ", "), 60)
	case st.RuntimeStatus == "Running":
		line += "  waiting for an event"
	}
	if cs := compact(st.CustomStatus); cs != "null" {
		line += "  " + truncate(cs, 60)
	}
	return line
}

func (c *cli) watch(ctx context.Context, args []string) error {
	fs := c.flags("watch", "ID [FLAGS]", "Follows an instance until it finishes, showing its progress (status, activities done of\n"+
		"scheduled, the current step, elapsed time), then prints its final status.")
	cf := c.clientFlags(fs)
	timeout := fs.Duration("timeout", 0, "give up watching after this long (0: no limit)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := cf.connect(pos, "ID")
	if err != nil {
		return err
	}
	return c.followToEnd(ctx, a, pos[0], *timeout, cf.json)
}

func (c *cli) clearProgress() {
	if c.tty {
		fmt.Fprint(c.stderr, "\r\033[K")
	}
}

func (c *cli) status(ctx context.Context, args []string) error {
	fs := c.flags("status", "ID [FLAGS]", "Shows the status of an instance.")
	cf := c.clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := cf.connect(pos, "ID")
	if err != nil {
		return err
	}
	st, r, err := a.getStatus(ctx, pos[0], nil)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(c.stdout, r.body)
	}
	printStatus(c.stdout, st)
	return nil
}

func (c *cli) list(ctx context.Context, args []string) error {
	fs := c.flags("list", "[FLAGS]", "Lists instances, oldest first.")
	cf := c.clientFlags(fs)
	statuses := fs.String("status", "", "keep these runtime statuses (comma-separated: Running,Completed,...)")
	prefix := fs.String("prefix", "", "keep instance ids starting with this")
	from := fs.String("from", "", "keep instances created at or after this time (RFC 3339)")
	to := fs.String("to", "", "keep instances created at or before this time (RFC 3339)")
	top := fs.Int("top", 100, "instances per page")
	all := fs.Bool("all", false, "list every page, not only the first")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := exactly(pos); err != nil {
		return err
	}
	if *top <= 0 {
		return usagef("--top must be positive")
	}
	a, err := cf.client()
	if err != nil {
		return err
	}
	q := url.Values{"top": {fmt.Sprint(*top)}}
	for k, v := range map[string]string{"runtimeStatus": *statuses, "instanceIdPrefix": *prefix, "createdTimeFrom": *from, "createdTimeTo": *to} {
		if v != "" {
			q.Set(k, v)
		}
	}
	list, more, err := getPages[json.RawMessage](ctx, a, "/instances", q, *all, c.stderr)
	if err != nil {
		return err
	}
	if cf.json {
		b, _ := json.Marshal(list)
		if list == nil {
			b = []byte("[]")
		}
		return printJSON(c.stdout, b)
	}
	rows := [][]string{{"ID", "NAME", "STATUS", "CREATED", "UPDATED", "OUTPUT"}}
	for _, raw := range list {
		var st httpapi.StatusPayload
		if err := json.Unmarshal(raw, &st); err != nil {
			return err
		}
		rows = append(rows, []string{st.InstanceID, st.Name, st.RuntimeStatus, st.CreatedTime, st.LastUpdatedTime, truncate(compact(st.Output), 50)})
	}
	printTable(c.stdout, rows)
	if more {
		fmt.Fprintln(c.stderr, "(more instances: use --all, or narrow with --status, --prefix, --from)")
	}
	return nil
}

func (c *cli) history(ctx context.Context, args []string) error {
	fs := c.flags("history", "ID [FLAGS]", "Shows the history events of an instance's current execution.")
	cf := c.clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := cf.connect(pos, "ID")
	if err != nil {
		return err
	}
	st, _, err := a.getStatus(ctx, pos[0], url.Values{"showHistory": {"true"}, "showHistoryOutput": {"true"}, "showInput": {"false"}})
	if err != nil {
		return err
	}
	var events []httpapi.HistoryEvent
	if st.HistoryEvents != nil {
		events = *st.HistoryEvents
	}
	if cf.json {
		b, _ := json.Marshal(events)
		if events == nil {
			b = []byte("[]")
		}
		return printJSON(c.stdout, b)
	}
	rows := [][]string{{"TIME", "EVENT", "NAME", "DETAILS"}}
	for _, ev := range events {
		name := ev.FunctionName
		if name == "" {
			name = ev.Name
		}
		rows = append(rows, []string{eventTime(ev.Timestamp), ev.EventType, name, truncate(eventDetails(ev), 70)})
	}
	printTable(c.stdout, rows)
	return nil
}

func (c *cli) raise(ctx context.Context, args []string) error {
	fs := c.flags("raise", "ID EVENT [JSON] [FLAGS]", "Raises the event EVENT with the JSON payload (default none) to an instance.")
	cf := c.clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var body []byte
	if len(pos) == 3 {
		if body, err = jsonArg("payload", pos[2]); err != nil {
			return err
		}
		pos = pos[:2]
	}
	a, err := cf.connect(pos, "ID", "EVENT")
	if err != nil {
		return err
	}
	r, err := a.do(ctx, "POST", instancePath(pos[0], "raiseEvent", pos[1]), nil, body)
	if err != nil {
		return err
	}
	if err := controlError(r, pos[0]); err != nil {
		return err
	}
	return c.done(cf, pos[0], "raised "+pos[1]+" to "+pos[0])
}

// control makes terminate, suspend, resume and rewind.
func controlCommand(op, done string) func(*cli, context.Context, []string) error {
	return func(c *cli, ctx context.Context, args []string) error {
		fs := c.flags(op, "ID [FLAGS]", "Asks the node to "+op+" an instance.")
		cf := c.clientFlags(fs)
		reason := fs.String("reason", "", "why (recorded in the history)")
		pos, err := parse(fs, args)
		if err != nil {
			return err
		}
		if err := exactly(pos, "ID"); err != nil {
			return err
		}
		a, err := cf.client()
		if err != nil {
			return err
		}
		var q url.Values
		if *reason != "" {
			q = url.Values{"reason": {*reason}}
		}
		r, err := a.do(ctx, "POST", instancePath(pos[0], op), q, nil)
		if err != nil {
			return err
		}
		if err := controlError(r, pos[0]); err != nil {
			return err
		}
		return c.done(cf, pos[0], done+" "+pos[0])
	}
}

// controlError turns the answer of an operation on an instance into an
// error: Durable Functions answers 410 for a finished instance, which the
// npm client takes silently; at a terminal it deserves a word.
func controlError(r *apiResponse, id string) error {
	switch r.code {
	case http.StatusAccepted:
		return nil
	case http.StatusGone:
		return fmt.Errorf("instance %s has finished", id)
	case http.StatusNotFound:
		return fmt.Errorf("instance %s not found", id)
	}
	return r.expect(http.StatusAccepted)
}

// done reports an operation that has no output of its own.
func (c *cli) done(cf *clientFlags, id, msg string) error {
	if cf.json {
		b, _ := json.Marshal(map[string]string{"id": id, "result": msg})
		return printJSON(c.stdout, b)
	}
	fmt.Fprintln(c.stdout, msg)
	return nil
}

func (c *cli) restart(ctx context.Context, args []string) error {
	fs := c.flags("restart", "ID [FLAGS]", "Starts the orchestrator of an instance again with its input, under a new id\n"+
		"(or, with --same-id, under its own id once it has finished).")
	cf := c.clientFlags(fs)
	same := fs.Bool("same-id", false, "restart under the same instance id")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := cf.connect(pos, "ID")
	if err != nil {
		return err
	}
	q := url.Values{"restartWithNewInstanceId": {fmt.Sprint(!*same)}}
	r, err := a.do(ctx, "POST", instancePath(pos[0], "restart"), q, nil)
	if err != nil {
		return err
	}
	if err := r.expect(http.StatusAccepted); err != nil {
		return err
	}
	var p httpapi.CheckStatusPayload
	if err := r.decode(&p); err != nil {
		return err
	}
	if cf.json {
		return printJSON(c.stdout, r.body)
	}
	printFields(c.stdout, [][2]string{{"ID", p.ID}, {"RESTARTED FROM", pos[0]}, {"STATUS URL", p.StatusQueryGetURI}})
	return nil
}

func (c *cli) purge(ctx context.Context, args []string) error {
	fs := c.flags("purge", "ID | --from T [--to T] [--status S,...] [FLAGS]",
		"Deletes a finished instance, or every finished instance created in a time range.")
	cf := c.clientFlags(fs)
	from := fs.String("from", "", "purge instances created at or after this time (RFC 3339)")
	to := fs.String("to", "", "... and at or before this time (default now)")
	statuses := fs.String("status", "", "only these statuses (default Completed,Failed,Terminated,Canceled)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := cf.client()
	if err != nil {
		return err
	}
	var r *apiResponse
	switch {
	case len(pos) == 1 && *from == "" && *to == "" && *statuses == "":
		if r, err = a.do(ctx, "DELETE", instancePath(pos[0]), nil, nil); err != nil {
			return err
		}
		if r.code == http.StatusNotFound {
			return fmt.Errorf("instance %s not found", pos[0])
		}
	case len(pos) == 0 && *from != "":
		q := url.Values{"createdTimeFrom": {*from}}
		if *to != "" {
			q.Set("createdTimeTo", *to)
		}
		if *statuses != "" {
			q.Set("runtimeStatus", *statuses)
		}
		if r, err = a.do(ctx, "DELETE", "/instances", q, nil); err != nil {
			return err
		}
		if r.code == http.StatusNotFound {
			r.code = http.StatusOK // nothing matched: Durable Functions' 404
		}
	default:
		return usagef("give an instance ID, or --from (with --to and --status if you like)")
	}
	if err := r.expect(http.StatusOK); err != nil {
		return err
	}
	var res httpapi.PurgeResult
	if err := r.decode(&res); err != nil {
		return err
	}
	if cf.json {
		return printJSON(c.stdout, r.body)
	}
	noun := "instances"
	if res.InstancesDeleted == 1 {
		noun = "instance"
	}
	fmt.Fprintf(c.stdout, "purged %d %s\n", res.InstancesDeleted, noun)
	return nil
}

// eventDetails summarises what a history event carries.
func eventDetails(ev httpapi.HistoryEvent) string {
	var parts []string
	if ev.OrchestrationStatus != "" {
		parts = append(parts, ev.OrchestrationStatus)
	}
	if ev.InstanceID != "" {
		parts = append(parts, "instance "+ev.InstanceID)
	}
	if ev.Version != "" {
		parts = append(parts, "version "+ev.Version)
	}
	if ev.FireAt != "" {
		parts = append(parts, "fires "+eventTime(ev.FireAt))
	}
	if ev.Reason != "" {
		parts = append(parts, "reason "+ev.Reason)
	}
	if ev.FailureDetails != nil {
		parts = append(parts, "failed: "+ev.FailureDetails.ErrorMessage)
	}
	if len(ev.Input) > 0 {
		parts = append(parts, "payload "+compact(ev.Input))
	}
	if len(ev.Result) > 0 {
		parts = append(parts, "result "+compact(ev.Result))
	}
	return strings.Join(parts, ", ")
}

func eventTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}
