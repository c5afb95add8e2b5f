#!/usr/bin/env bash
# Run once by the postgres image when it creates the primary's data directory: lets the standby of the
# `ha` profile (docker-compose.yml) stream from it with the database user's password.
set -euo pipefail
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
