package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable"
)

// boolParam reads a boolean query parameter; absent or empty is def.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, errBadRequest(fmt.Sprintf("query parameter %s=%q is not a boolean", name, s))
	}
	return v, nil
}

// intParam reads a non-negative integer query parameter; absent is 0.
func intParam(q url.Values, name string) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, errBadRequest(fmt.Sprintf("query parameter %s=%q is not a non-negative integer", name, s))
	}
	return v, nil
}

// timeLayouts are the forms of a time query parameter accepted: what
// JavaScript's toISOString, .NET's "o" and "s" and Python's isoformat give.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02",
}

// timeParam reads a time query parameter; absent is the zero time. A time
// without an offset is UTC.
func timeParam(q url.Values, name string) (time.Time, error) {
	s := strings.TrimSpace(q.Get(name))
	if s == "" {
		return time.Time{}, nil
	}
	// A '+' offset sent unescaped arrives as a space.
	candidates := []string{s}
	if i := strings.LastIndexByte(s, ' '); i > 0 && strings.Contains(s[:i], "T") {
		candidates = append(candidates, s[:i]+"+"+s[i+1:])
	}
	for _, c := range candidates {
		for _, layout := range timeLayouts {
			if t, err := time.Parse(layout, c); err == nil {
				return t.UTC(), nil
			}
		}
	}
	return time.Time{}, errBadRequest(fmt.Sprintf("query parameter %s=%q is not a time (use ISO 8601, e.g. 2024-05-01T10:00:00Z)", name, s))
}

// statusesParam reads runtimeStatus=A,B (the parameter may repeat).
func statusesParam(q url.Values) ([]durable.RuntimeStatus, error) {
	var out []durable.RuntimeStatus
	for _, v := range q["runtimeStatus"] {
		for _, s := range strings.Split(v, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			st, ok := parseStatus(s)
			if !ok {
				return nil, errBadRequest(fmt.Sprintf("runtimeStatus %q is not one of Running, Completed, ContinuedAsNew, Failed, Canceled, Terminated, Pending, Suspended", s))
			}
			out = append(out, st)
		}
	}
	return out, nil
}

var allStatuses = []durable.RuntimeStatus{
	durable.StatusRunning, durable.StatusCompleted, durable.StatusContinuedAsNew, durable.StatusFailed,
	durable.StatusCanceled, durable.StatusTerminated, durable.StatusPending, durable.StatusSuspended,
}

func parseStatus(s string) (durable.RuntimeStatus, bool) {
	for _, st := range allStatuses {
		if strings.EqualFold(string(st), s) {
			return st, true
		}
	}
	return "", false
}

// waitParam reads timeout (seconds) and pollingInterval: whether and how
// long to wait for completion. pollingInterval is checked but not used: the
// runtime tells waiters when an instance ends, so there is nothing to poll
// (Durable Functions does the same with poll-free providers).
func (h *Handler) waitParam(q url.Values) (wait bool, d time.Duration, err error) {
	for _, name := range []string{"timeout", "pollingInterval"} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		secs, perr := strconv.ParseFloat(s, 64)
		if perr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs < 0 {
			return false, 0, errBadRequest(fmt.Sprintf("query parameter %s=%q is not a number of seconds", name, s))
		}
		if name == "timeout" {
			wait = true
			if secs >= h.opts.MaxWait.Seconds() {
				d = h.opts.MaxWait
			} else {
				d = time.Duration(secs * float64(time.Second))
			}
		}
	}
	return wait, d, nil
}

// readBody reads the whole (size-bounded) body.
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		if _, _, ok := classify(err); ok {
			return nil, err
		}
		return nil, errBadRequest("cannot read the request body: " + err.Error())
	}
	return b, nil
}

// jsonBody reads a body that must be JSON if present: nil when empty, the
// compacted JSON otherwise.
func jsonBody(r *http.Request) (json.RawMessage, error) {
	b, err := readBody(r)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return nil, err
	}
	return compactJSON(b)
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, errBadRequest("invalid JSON content: " + err.Error())
	}
	return buf.Bytes(), nil
}

// isJSON reports whether the request says its body is JSON.
func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
