package main

import (
	"net"
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves net/http/pprof's profiles under /debug/pprof/ to
// clients on the loopback interface only: profiles reveal the program's
// code and data, so even a node that listens beyond loopback (with an API
// key, which `go tool pprof` cannot send) keeps them local.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the named profiles: heap, goroutine, block...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return loopbackOnly(mux)
}

// loopbackOnly answers 403 to a request whose peer is not a loopback
// address.
func loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "profiles are served to loopback clients only", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
