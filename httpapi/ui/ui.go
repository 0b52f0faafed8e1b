// Package ui is durable's dashboard: plain HTML, CSS and JavaScript
// embedded in the binary (no build step, nothing fetched from elsewhere, so
// it works offline). The page is a client of the HTTP API like any other:
// it lists and queries instances and entities, draws an instance's history
// as a timeline, acts on instances (raise, terminate, suspend, resume,
// restart, rewind, purge) and shows the node's health, all through the
// routes under /runtime/webhooks/durabletask/. When the API asks for a key
// it asks the user once, keeps it in the tab's sessionStorage and sends it
// as the x-functions-key header, never in a URL.
//
// httpapi.Options.Dashboard mounts it at /ui/.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed static
var files embed.FS

// Files returns the dashboard's files (index.html at the root).
func Files() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic("ui: embedded files missing: " + err.Error()) // cannot happen: the directory is embedded
	}
	return sub
}

// Handler serves the dashboard under prefix (for example "/ui/"). The
// Content-Security-Policy lets the page load only its own files and talk
// only to its own origin.
func Handler(prefix string) http.Handler {
	fsrv := http.StripPrefix(strings.TrimSuffix(prefix, "/"), http.FileServerFS(Files()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}
