#!/usr/bin/env bash
# Makes sure a PostgreSQL server runs on this machine for the store tests
# and prints its DSN as the last line. Installs postgresql with apt-get if
# missing; works without systemd (pg_ctlcluster). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
	echo "test-postgres: apt-get install postgresql" >&2
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1==v && $2=="main"' | grep -q .; then
	pg_createcluster "$ver" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online; then
	pg_ctlcluster "$ver" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 30); do
	su postgres -c "psql -p $port -qtAc 'SELECT 1'" >/dev/null 2>&1 && break
	sleep 1
done
su postgres -c "psql -p $port -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='godwit'\"" | grep -q 1 ||
	su postgres -c "psql -p $port -qc \"CREATE ROLE godwit LOGIN CREATEDB PASSWORD 'godwit'\"" >&2
su postgres -c "psql -p $port -qtAc \"SELECT 1 FROM pg_database WHERE datname='godwit_test'\"" | grep -q 1 ||
	su postgres -c "psql -p $port -qc 'CREATE DATABASE godwit_test OWNER godwit'" >&2
echo "postgres://godwit:godwit@127.0.0.1:$port/godwit_test?sslmode=disable"
