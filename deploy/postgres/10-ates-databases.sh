#!/bin/sh
# Runs once, when the PostgreSQL data volume is first initialised (the official image runs
# /docker-entrypoint-initdb.d/*). One database per service, each owned by a role of its
# own, so no service can read another's tables (DESIGN X1, X2).
set -eu

: "${ATES_DB_PASSWORD:?ATES_DB_PASSWORD must be set for the service roles}"

for service in auth tasks billing analytics notifications; do
    # psql variables (:'name', :"name") quote the values; the heredoc is not expanded.
    psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set role="ates_$service" --set db="ates_$service" \
        --set password="$ATES_DB_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
\connect :"db"
-- PostgreSQL 15+: only the owner creates in the public schema.
ALTER SCHEMA public OWNER TO :"role";
SQL
done
