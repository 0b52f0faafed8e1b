package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/durable-go/durable"
)

// start: POST orchestrators/{functionName}[/{instanceId}], the body (JSON,
// optional) as input.
func (h *Handler) start(w http.ResponseWriter, r *http.Request) {
	wait, timeout, err := h.waitParam(r.URL.Query())
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	input, err := jsonBody(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.startAndRespond(w, r, r.PathValue("functionName"), r.PathValue("instanceId"), input, wait, timeout)
}

// starter is the tutorial's HttpStart: GET or POST
// /api/orchestrators/{functionName}. A body that is JSON is the input; any
// other body is taken as a string (the tutorial's JavaScript starter passes
// the request text), unless it claims to be JSON and is not.
func (h *Handler) starter(w http.ResponseWriter, r *http.Request) {
	wait, timeout, err := h.waitParam(r.URL.Query())
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	var input json.RawMessage
	if len(strings.TrimSpace(string(body))) > 0 {
		if input, err = compactJSON(body); err != nil {
			if isJSON(r) {
				h.WriteError(w, r, err)
				return
			}
			input, _ = json.Marshal(string(body))
		}
	}
	h.startAndRespond(w, r, r.PathValue("functionName"), "", input, wait, timeout)
}

func (h *Handler) startAndRespond(w http.ResponseWriter, r *http.Request, name, id string, input json.RawMessage, wait bool, timeout time.Duration) {
	var opts []durable.StartOption
	if id != "" {
		opts = append(opts, durable.WithInstanceID(id))
	}
	if q := r.URL.Query(); q.Has("version") {
		// Not Durable Functions': picks the orchestrator version to run.
		opts = append(opts, durable.WithVersion(q.Get("version")))
	}
	var in any
	if input != nil {
		in = input
	}
	// A W3C traceparent header makes the instance's spans children of the
	// caller's (an invalid one is ignored, as the recommendation asks).
	if tp := r.Header.Get("traceparent"); tp != "" {
		opts = append(opts, durable.WithTraceParent(tp))
	}
	id, err := h.c.Start(r.Context(), name, in, opts...)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	if wait {
		h.WaitForCompletionOrCheckStatusResponse(w, r, id, timeout)
		return
	}
	h.WriteCheckStatusResponse(w, r, id)
}

// WriteCheckStatusResponse answers 202 with the check-status payload of
// instance id, its statusQueryGetUri in Location and Retry-After: 10 (Durable
// Functions' CreateCheckStatusResponse).
func (h *Handler) WriteCheckStatusResponse(w http.ResponseWriter, r *http.Request, id string) {
	p := h.CheckStatus(r, id)
	w.Header().Set("Location", p.StatusQueryGetURI)
	w.Header().Set("Retry-After", "10")
	writeJSON(w, http.StatusAccepted, p)
}

// WaitForCompletionOrCheckStatusResponse waits up to timeout (at most
// Options.MaxWait) for instance id to finish. Completed: 200 with its
// output. Failed, Terminated or Canceled: its status payload (200, or 500 for
// Failed with returnInternalServerErrorOnFailure=true in the request). Still
// running: the 202 check-status answer.
func (h *Handler) WaitForCompletionOrCheckStatusResponse(w http.ResponseWriter, r *http.Request, id string, timeout time.Duration) {
	timeout = min(timeout, h.opts.MaxWait)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	defer context.AfterFunc(h.stopped, cancel)()
	st, err := h.c.WaitForCompletion(ctx, id)
	if err != nil {
		if r.Context().Err() != nil {
			return // the caller went away
		}
		if ctx.Err() == nil {
			h.WriteError(w, r, err)
			return
		}
		// Timed out or the server stops waiting: the instance runs on.
		h.WriteCheckStatusResponse(w, r, id)
		return
	}
	if st.RuntimeStatus == durable.StatusCompleted {
		writeRawJSON(w, http.StatusOK, st.Output)
		return
	}
	h.writeStatus(w, r, st)
}

// status: GET instances/{instanceId}.
func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.c.Status(r.Context(), r.PathValue("instanceId"))
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	h.writeStatus(w, r, st)
}

// writeStatus answers with the status payload: 202 (with Location and
// Retry-After: 5) while the instance runs, 200 once it has ended, 500 for a
// failed one if the caller asked with returnInternalServerErrorOnFailure.
func (h *Handler) writeStatus(w http.ResponseWriter, r *http.Request, st *durable.Status) {
	q := r.URL.Query()
	showHistory, err := boolParam(q, "showHistory", false)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	showHistoryOutput, err := boolParam(q, "showHistoryOutput", false)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	showInput, err := boolParam(q, "showInput", true)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	errorOnFailure, err := boolParam(q, "returnInternalServerErrorOnFailure", false)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	p := statusPayload(st, showInput)
	if showHistory {
		var opts []durable.HistoryOption
		if !showHistoryOutput {
			opts = append(opts, durable.WithoutPayloads())
		}
		events, err := h.c.History(r.Context(), st.InstanceID, opts...)
		if err != nil && !errors.Is(err, durable.ErrInstanceNotFound) {
			h.WriteError(w, r, err)
			return
		}
		he := historyEvents(events, showHistoryOutput)
		p.HistoryEvents = &he
	}
	code := http.StatusOK
	switch st.RuntimeStatus {
	case durable.StatusRunning, durable.StatusPending, durable.StatusContinuedAsNew, durable.StatusSuspended:
		code = http.StatusAccepted
		w.Header().Set("Location", h.origin(r)+r.URL.RequestURI())
		w.Header().Set("Retry-After", "5")
	case durable.StatusFailed:
		if errorOnFailure {
			code = http.StatusInternalServerError
		}
	}
	writeJSON(w, code, p)
}

// list: GET instances[/], paged through the x-ms-continuation-token header.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := durable.Query{InstanceIDPrefix: q.Get("instanceIdPrefix"), PageSize: h.opts.PageSize}
	var err error
	if query.Statuses, err = statusesParam(q); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if query.CreatedFrom, err = timeParam(q, "createdTimeFrom"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if query.CreatedTo, err = timeParam(q, "createdTimeTo"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	top, err := intParam(q, "top")
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	if top > 0 {
		query.PageSize = min(top, durable.MaxPageSize)
	}
	showInput, err := boolParam(q, "showInput", true)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	query.ContinuationToken = continuationToken(r)
	page, err := h.c.List(r.Context(), query)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	out := make([]*StatusPayload, 0, len(page.Instances))
	for _, st := range page.Instances {
		out = append(out, statusPayload(st, showInput))
	}
	setContinuationToken(w, page.ContinuationToken)
	setPartitionsDown(w, page.PartitionsDown)
	writeJSON(w, http.StatusOK, out)
}

const continuationHeader = "x-ms-continuation-token"

// continuationToken reads the request's token; "null" (which some clients
// echo back) means none.
func continuationToken(r *http.Request) string {
	tok := strings.TrimSpace(r.Header.Get(continuationHeader))
	if tok == "null" {
		return ""
	}
	return tok
}

// PartitionsDownHeader, on a listing's answer, lists the partitions that
// are down (comma-separated numbers): their instances or entities are
// missing from it. It is absent when every partition answered.
const PartitionsDownHeader = "x-durable-partitions-down"

// setPartitionsDown sets PartitionsDownHeader when partitions are down.
func setPartitionsDown(w http.ResponseWriter, down []int) {
	if len(down) == 0 {
		return
	}
	parts := make([]string, len(down))
	for i, p := range down {
		parts[i] = strconv.Itoa(p)
	}
	w.Header().Set(PartitionsDownHeader, strings.Join(parts, ","))
}

// setContinuationToken sets the header only when more pages exist: clients
// follow any non-empty token, so the last page must not carry one.
func setContinuationToken(w http.ResponseWriter, tok string) {
	if tok != "" {
		w.Header().Set(continuationHeader, tok)
	}
}

// raiseEvent: POST instances/{instanceId}/raiseEvent/{eventName}. As in
// Durable Functions the instance is checked (404, 410) before the body.
func (h *Handler) raiseEvent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("instanceId")
	st, err := h.c.Status(r.Context(), id)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	if st.RuntimeStatus.IsTerminal() {
		h.WriteError(w, r, durable.ErrInstanceCompleted)
		return
	}
	body, err := readBody(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	var payload any
	if len(strings.TrimSpace(string(body))) > 0 {
		if !isJSON(r) {
			h.WriteError(w, r, errBadRequest("only application/json request content is supported"))
			return
		}
		raw, err := compactJSON(body)
		if err != nil {
			h.WriteError(w, r, err)
			return
		}
		payload = raw
	}
	if err := h.c.RaiseEvent(r.Context(), id, r.PathValue("eventName"), payload); err != nil {
		h.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// operation: POST instances/{instanceId}/{terminate|suspend|resume|rewind|restart}
// (case-insensitive, as in Durable Functions).
func (h *Handler) operation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("instanceId")
	reason := r.URL.Query().Get("reason")
	var err error
	switch strings.ToLower(r.PathValue("operation")) {
	case "terminate":
		err = h.c.Terminate(r.Context(), id, reason)
	case "suspend":
		err = h.c.Suspend(r.Context(), id, reason)
	case "resume":
		err = h.c.Resume(r.Context(), id, reason)
	case "rewind":
		err = h.rewind(r.Context(), id, reason)
	case "restart":
		h.restart(w, r, id)
		return
	default:
		h.fail(w, r, http.StatusNotFound, "NotFound", "no such operation: "+r.PathValue("operation"))
		return
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// errRunning is a rewind of an instance that has not failed but is not
// finished either: 412, the code the npm client knows for it.
var errRunning = errors.New("only failed instances can be rewound")

func (h *Handler) rewind(ctx context.Context, id, reason string) error {
	st, err := h.c.Status(ctx, id)
	if err != nil {
		return err
	}
	if st.RuntimeStatus != durable.StatusFailed && !st.RuntimeStatus.IsTerminal() {
		return errRunning
	}
	return h.c.Rewind(ctx, id, reason)
}

// restart: POST instances/{instanceId}/restart?restartWithNewInstanceId=true,
// answered like a start.
func (h *Handler) restart(w http.ResponseWriter, r *http.Request, id string) {
	q := r.URL.Query()
	newID, err := boolParam(q, "restartWithNewInstanceId", true)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	wait, timeout, err := h.waitParam(q)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	started, err := h.c.Restart(r.Context(), id, newID)
	if errors.Is(err, durable.ErrInstanceNotFound) {
		// Durable Functions answers an unknown id with 400 here.
		h.fail(w, r, http.StatusBadRequest, "InstanceNotFound", "instance id does not match a valid orchestration instance: "+err.Error())
		return
	}
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	if wait {
		h.WaitForCompletionOrCheckStatusResponse(w, r, started, timeout)
		return
	}
	h.WriteCheckStatusResponse(w, r, started)
}

// purge: DELETE instances/{instanceId}.
func (h *Handler) purge(w http.ResponseWriter, r *http.Request) {
	if err := h.c.Purge(r.Context(), r.PathValue("instanceId")); err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, PurgeResult{InstancesDeleted: 1})
}

// purgeMany: DELETE instances[/]?createdTimeFrom=(required)&createdTimeTo&runtimeStatus.
// 404 when nothing matched, as in Durable Functions.
func (h *Handler) purgeMany(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f durable.PurgeFilter
	var err error
	if f.CreatedFrom, err = timeParam(q, "createdTimeFrom"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if f.CreatedFrom.IsZero() {
		h.WriteError(w, r, errBadRequest("please provide a value for the createdTimeFrom parameter"))
		return
	}
	if f.CreatedTo, err = timeParam(q, "createdTimeTo"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if f.CreatedTo.IsZero() {
		f.CreatedTo = time.Now().UTC()
	}
	if f.Statuses, err = statusesParam(q); err != nil {
		h.WriteError(w, r, err)
		return
	}
	n, err := h.c.PurgeBy(r.Context(), f)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	code := http.StatusOK
	if n == 0 {
		code = http.StatusNotFound
	}
	writeJSON(w, code, PurgeResult{InstancesDeleted: n})
}
