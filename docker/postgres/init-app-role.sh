#!/bin/sh
# /docker-entrypoint-initdb.d/: the postgres image runs this once, as POSTGRES_USER, on the
# first start of an empty data directory. The role it creates is in app-role.sql.
set -eu
psql --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_role="$MQ_APP_USER" -v app_password="$MQ_APP_PASSWORD" -f /mq/app-role.sql
