package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/durable-go/durable/httpapi"
)

// clientFlags are the flags every client command takes.
type clientFlags struct {
	addr, key string
	json      bool
}

func (c *cli) clientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	addr := c.getenv("DURABLE_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:7071"
	}
	fs.StringVar(&f.addr, "addr", addr, "URL of the durable node (or $DURABLE_ADDR)")
	fs.StringVar(&f.key, "api-key", c.getenv("DURABLE_API_KEY"), "the node's API key (default $DURABLE_API_KEY)")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
	return f
}

// connect checks the positional arguments against names and returns the
// client of the node the flags name.
func (f *clientFlags) connect(pos []string, names ...string) (*apiClient, error) {
	if err := exactly(pos, names...); err != nil {
		return nil, err
	}
	return f.client()
}

// apiClient talks to a node's HTTP API.
type apiClient struct {
	base string // scheme://host[:port], no trailing slash
	key  string
	hc   *http.Client
}

func (f *clientFlags) client() (*apiClient, error) {
	addr := strings.TrimRight(f.addr, "/")
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usagef("bad --addr %q: want a URL such as http://127.0.0.1:7071", f.addr)
	}
	// Each request is bounded by its context; this is a backstop.
	return &apiClient{base: addr, key: f.key, hc: &http.Client{Timeout: 5 * time.Minute}}, nil
}

type apiResponse struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a request to WebhookBase+path. The key goes in a header, so it
// stays out of URLs (and server logs).
func (a *apiClient) do(ctx context.Context, method, path string, q url.Values, body []byte, header ...string) (*apiResponse, error) {
	u := a.base + httpapi.WebhookBase + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.key != "" {
		req.Header.Set("x-functions-key", a.key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the node at %s (is `durable serve` running?): %w", a.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	return &apiResponse{code: resp.StatusCode, header: resp.Header, body: b}, nil
}

// expect returns an error unless the answer has one of the codes; the
// error says what the server said.
func (r *apiResponse) expect(codes ...int) error {
	for _, c := range codes {
		if r.code == c {
			return nil
		}
	}
	var eb httpapi.ErrorBody
	if json.Unmarshal(r.body, &eb) == nil && eb.Message != "" {
		return fmt.Errorf("%s (%d %s)", eb.Message, r.code, http.StatusText(r.code))
	}
	if len(bytes.TrimSpace(r.body)) > 0 {
		return fmt.Errorf("%d %s: %s", r.code, http.StatusText(r.code), truncate(string(r.body), 200))
	}
	return fmt.Errorf("%d %s", r.code, http.StatusText(r.code))
}

func (r *apiResponse) decode(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("the node answered something that is not the expected JSON: %w", err)
	}
	return nil
}

func instancePath(id string, more ...string) string {
	p := "/instances/" + url.PathEscape(id)
	for _, m := range more {
		p += "/" + url.PathEscape(m)
	}
	return p
}

// getStatus reads an instance's status payload.
func (a *apiClient) getStatus(ctx context.Context, id string, q url.Values) (*httpapi.StatusPayload, *apiResponse, error) {
	r, err := a.do(ctx, "GET", instancePath(id), q, nil)
	if err != nil {
		return nil, nil, err
	}
	if r.code == http.StatusNotFound {
		return nil, r, fmt.Errorf("instance %s not found", id)
	}
	// 500 is a Failed instance when asked with returnInternalServerErrorOnFailure.
	if err := r.expect(http.StatusOK, http.StatusAccepted); err != nil {
		return nil, r, err
	}
	var st httpapi.StatusPayload
	if err := r.decode(&st); err != nil {
		return nil, r, err
	}
	return &st, r, nil
}

// getPages reads a paged list at path, following the API's continuation
// token: every page if all is set, else the first one only. more reports
// that pages were left unread. If the server says partitions are down (their
// items are missing from the list), getPages writes so to warn, once.
func getPages[T any](ctx context.Context, a *apiClient, path string, q url.Values, all bool, warn io.Writer) (list []T, more bool, err error) {
	token := ""
	warned := false
	for {
		var hdr []string
		if token != "" {
			hdr = []string{"x-ms-continuation-token", token}
		}
		r, err := a.do(ctx, "GET", path, q, nil, hdr...)
		if err != nil {
			return nil, false, err
		}
		if err := r.expect(http.StatusOK); err != nil {
			return nil, false, err
		}
		var page []T
		if err := r.decode(&page); err != nil {
			return nil, false, err
		}
		list = append(list, page...)
		if down := r.header.Get(httpapi.PartitionsDownHeader); down != "" && !warned {
			warned = true
			fmt.Fprintf(warn, "warning: partitions %s are down (their store files are damaged): what they hold is missing from this list\n", down)
		}
		if token = r.header.Get("x-ms-continuation-token"); token == "" {
			return list, false, nil
		}
		if !all {
			return list, true, nil
		}
	}
}
