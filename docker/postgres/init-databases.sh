#!/bin/bash
# Runs once, when the PostgreSQL volume is first initialised (the image's
# /docker-entrypoint-initdb.d convention): one database and one login role
# per service, each role owning only its own database. The services' own
# migrations create the tables when they start.
set -euo pipefail

for service in ${CLINIC_DATABASES:-intake sessions billing notifications}; do
  password_var="$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="${!password_var:?set $password_var (see .env.example)}"
  echo "creating database and role '$service'"
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
       --set role="$service" --set password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
  # Exclusion constraints on time ranges (no double-booking) need
  # btree_gist; created here by the superuser so migrations need no more
  # than ownership of the database.
  psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$service" \
       -c "CREATE EXTENSION IF NOT EXISTS btree_gist"
done
