package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/durable-go/durable"
)

// Entities is what the entity routes need from the runtime;
// *durable.Client has it and is the default (Options.Entities). Errors are
// answered like the client's: durable.ErrEntityNotRegistered and
// durable.ErrInvalidEntityID (an unknown entity name, a bad key) are a 400
// (Durable Functions' ArgumentException), durable.ErrEntityNotFound a 404.
type Entities interface {
	// SignalEntity sends operation op with input (nil, or a
	// json.RawMessage) to the entity, durably, without waiting for it.
	SignalEntity(ctx context.Context, id durable.EntityID, op string, input any) error
	// ReadEntityState returns the entity's JSON state, or
	// durable.ErrEntityNotFound.
	ReadEntityState(ctx context.Context, id durable.EntityID) (json.RawMessage, error)
	// ListEntities returns the entities that match q, a page at a time.
	ListEntities(ctx context.Context, q durable.EntityQuery) (*durable.EntityPage, error)
}

var _ Entities = (*durable.Client)(nil)

// EntityPayload is one entity in a listing, as Durable Functions shows it.
type EntityPayload struct {
	EntityID          EntityIDPayload `json:"entityId"`
	LastOperationTime string          `json:"lastOperationTime"`
	State             json.RawMessage `json:"state,omitempty"`
}

// EntityIDPayload names an entity in a listing.
type EntityIDPayload struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// signalEntity: POST entities/{entityName}/{entityKey}?op=, or DELETE (a
// signal of the operation "delete", as in Durable Functions: struct entities
// delete their state, function entities do what their code says). A JSON
// body (Content-Type application/json) is the input; any other body is sent
// as a string.
func (h *Handler) signalEntity(w http.ResponseWriter, r *http.Request) {
	id := durable.EntityID{Name: r.PathValue("entityName"), Key: r.PathValue("entityKey")}
	op := r.URL.Query().Get("op")
	if r.Method == http.MethodDelete {
		op = "delete"
	}
	body, err := readBody(r)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	var input any
	if len(body) > 0 {
		if isJSON(r) {
			raw, err := compactJSON(body)
			if err != nil {
				h.WriteError(w, r, err)
				return
			}
			input = raw
		} else {
			raw, _ := json.Marshal(string(body))
			input = json.RawMessage(raw)
		}
	}
	if err := h.opts.Entities.SignalEntity(r.Context(), id, op, input); err != nil {
		h.WriteError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// readEntity: GET entities/{entityName}/{entityKey}; the key "$" is the
// empty key. 200 with the raw state, 404 if the entity has none.
func (h *Handler) readEntity(w http.ResponseWriter, r *http.Request) {
	id := durable.EntityID{Name: r.PathValue("entityName"), Key: r.PathValue("entityKey")}
	if id.Key == "$" {
		id.Key = ""
	}
	state, err := h.opts.Entities.ReadEntityState(r.Context(), id)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	writeRawJSON(w, http.StatusOK, state)
}

// listEntities: GET entities[/{entityName}]?fetchState&lastOperationTimeFrom&lastOperationTimeTo&top,
// paged through x-ms-continuation-token.
func (h *Handler) listEntities(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := durable.EntityQuery{Name: r.PathValue("entityName"), ContinuationToken: continuationToken(r)}
	var err error
	if query.FetchState, err = boolParam(q, "fetchState", false); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if query.LastOperationFrom, err = timeParam(q, "lastOperationTimeFrom"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if query.LastOperationTo, err = timeParam(q, "lastOperationTimeTo"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	if query.PageSize, err = intParam(q, "top"); err != nil {
		h.WriteError(w, r, err)
		return
	}
	query.PageSize = min(query.PageSize, durable.MaxPageSize)
	page, err := h.opts.Entities.ListEntities(r.Context(), query)
	if err != nil {
		h.WriteError(w, r, err)
		return
	}
	out := make([]EntityPayload, 0, len(page.Entities))
	for _, e := range page.Entities {
		var p EntityPayload
		// Durable Functions lower-cases entity names.
		p.EntityID.Name = strings.ToLower(e.ID.Name)
		p.EntityID.Key = e.ID.Key
		p.LastOperationTime = formatEventTime(e.LastOperationTime)
		if query.FetchState {
			p.State = e.State
			if len(p.State) == 0 {
				p.State = json.RawMessage("null")
			}
		}
		out = append(out, p)
	}
	setContinuationToken(w, page.ContinuationToken)
	setPartitionsDown(w, page.PartitionsDown)
	writeJSON(w, http.StatusOK, out)
}
