package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/durable-go/durable/httpapi"
)

func entityPath(name, key string) string {
	if key == "" {
		key = "$" // Durable Functions' spelling of the empty key
	}
	return "/entities/" + url.PathEscape(name) + "/" + url.PathEscape(key)
}

func (c *cli) signal(ctx context.Context, args []string) error {
	fs := c.flags("signal", "NAME KEY OP [JSON] [FLAGS]", "Signals the operation OP, with the JSON input (default none), to the entity NAME/KEY.\n"+
		"The signal is durable when the command returns; the entity runs it soon after.")
	cf := c.clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var body []byte
	if len(pos) == 4 {
		if body, err = jsonArg("input", pos[3]); err != nil {
			return err
		}
		pos = pos[:3]
	}
	a, err := cf.connect(pos, "NAME", "KEY", "OP")
	if err != nil {
		return err
	}
	// POST entities/{name}/{key}: here the key is taken as it is.
	path := "/entities/" + url.PathEscape(pos[0]) + "/" + url.PathEscape(pos[1])
	r, err := a.do(ctx, "POST", path, url.Values{"op": {pos[2]}}, body)
	if err != nil {
		return err
	}
	if err := r.expect(http.StatusAccepted); err != nil {
		return err
	}
	return c.done(cf, "@"+strings.ToLower(pos[0])+"@"+pos[1], fmt.Sprintf("signalled %s to %s/%s", pos[2], pos[0], pos[1]))
}

func (c *cli) entity(ctx context.Context, args []string) error {
	fs := c.flags("entity", "NAME KEY [FLAGS]", "Shows the state of the entity NAME/KEY (as JSON).")
	cf := c.clientFlags(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	a, err := cf.connect(pos, "NAME", "KEY")
	if err != nil {
		return err
	}
	r, err := a.do(ctx, "GET", entityPath(pos[0], pos[1]), nil, nil)
	if err != nil {
		return err
	}
	if r.code == http.StatusNotFound {
		return fmt.Errorf("entity %s/%s has no state", pos[0], pos[1])
	}
	if err := r.expect(http.StatusOK); err != nil {
		return err
	}
	return printJSON(c.stdout, r.body)
}

func (c *cli) entities(ctx context.Context, args []string) error {
	fs := c.flags("entities", "[NAME] [FLAGS]", "Lists the entities that have state (of entity NAME only, if given).")
	cf := c.clientFlags(fs)
	state := fs.Bool("state", false, "show each entity's state")
	all := fs.Bool("all", false, "list every page, not only the first")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("want at most one entity NAME, got %d arguments", len(pos))
	}
	a, err := cf.client()
	if err != nil {
		return err
	}
	path := "/entities"
	if len(pos) == 1 {
		path += "/" + url.PathEscape(pos[0])
	}
	q := url.Values{}
	if *state {
		q.Set("fetchState", "true")
	}
	list, more, err := getPages[httpapi.EntityPayload](ctx, a, path, q, *all, c.stderr)
	if err != nil {
		return err
	}
	if cf.json {
		if list == nil {
			list = []httpapi.EntityPayload{}
		}
		b, _ := json.Marshal(list)
		return printJSON(c.stdout, b)
	}
	header := []string{"NAME", "KEY", "LAST OPERATION"}
	if *state {
		header = append(header, "STATE")
	}
	rows := [][]string{header}
	for _, e := range list {
		row := []string{e.EntityID.Name, e.EntityID.Key, eventTime(e.LastOperationTime)}
		if *state {
			row = append(row, truncate(compact(e.State), 60))
		}
		rows = append(rows, row)
	}
	printTable(c.stdout, rows)
	if more {
		fmt.Fprintln(c.stderr, "(more entities: use --all)")
	}
	return nil
}
