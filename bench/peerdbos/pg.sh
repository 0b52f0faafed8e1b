#!/bin/sh
# pg.sh starts a throwaway PostgreSQL on 127.0.0.1 for the DBOS peer, from
# Debian's postgresql package (apt-get install -y postgresql), in a temp dir.
#
#   url=$(bench/peerdbos/pg.sh start)     # prints the URL (data in /tmp/pg-bench-PORT)
#   go run ./bench -w W1 -n 200 -peer -peer-pg "$url"
#   bench/peerdbos/pg.sh stop "$url"      # stops the server, removes the dir
#
# The server keeps PostgreSQL's defaults (fsync on, synchronous_commit on:
# every acknowledged commit survives a power cut), listens on loopback only
# (no Unix socket outside the temp dir), trusts local connections (it is a
# throwaway on 127.0.0.1), and allows 200 connections (DBOS opens a pool per
# run). When run as root, the server runs as the postgres user (initdb and
# postgres refuse root).
set -eu

bindir=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
if [ ! -x "$bindir/initdb" ]; then
	echo "pg.sh: no PostgreSQL server found (apt-get install -y postgresql)" >&2
	exit 1
fi

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		su postgres -s /bin/sh -c "$*"
	else
		sh -c "$*"
	fi
}

free_port() {
	# Bind port 0 on loopback and report what the kernel chose.
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-}" in
start)
	port=$(free_port)
	dir=/tmp/pg-bench-$port
	mkdir -m 755 "$dir" # fails if a server of this script already uses the port
	if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
	as_pg "'$bindir/initdb' -D '$dir/data' -U postgres -A trust -E UTF8 >'$dir/initdb.log' 2>&1" || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	as_pg "'$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 \
		-o \"-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$dir' -c max_connections=200\" start >/dev/null" || {
		cat "$dir/server.log" >&2
		exit 1
	}
	echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	url=${2:?usage: pg.sh stop URL}
	port=${url##*127.0.0.1:}
	port=${port%%/*}
	dir=/tmp/pg-bench-$port
	if [ ! -d "$dir/data" ]; then
		echo "pg.sh: $url was not started by pg.sh (no $dir/data)" >&2
		exit 1
	fi
	as_pg "'$bindir/pg_ctl' -D '$dir/data' -m fast -w stop >/dev/null" || true
	rm -rf "$dir"
	;;
*)
	echo "usage: pg.sh start | pg.sh stop URL" >&2
	exit 2
	;;
esac
