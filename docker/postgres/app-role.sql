-- The role `api` and `worker` log in as (issue 24). The image's POSTGRES_USER is a superuser,
-- and row-level security does not apply to superusers (nor to BYPASSRLS roles): this role is
-- neither, and owns nothing, so the tenant_isolation policies hold for every query it runs.
-- Only `migrate` connects as the owner. Run once by psql as the owner, with
--   -v app_role=<name> -v app_password=<password>
-- (docker/postgres/init-app-role.sh does, on the first start of an empty data directory).
\set ON_ERROR_STOP on

CREATE ROLE :"app_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'app_password';

-- PostgreSQL 15 and later no longer let every role create in public: usage only.
GRANT USAGE ON SCHEMA public TO :"app_role";
-- drizzle's table of applied migrations: api and worker read it at start, to find nothing
-- left to apply (src/db/client.ts), and never create or change it.
CREATE SCHEMA IF NOT EXISTS drizzle;
GRANT USAGE ON SCHEMA drizzle TO :"app_role";

-- What the owner's migrations create from now on, the app role may use; it may not alter it.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO :"app_role";
ALTER DEFAULT PRIVILEGES IN SCHEMA drizzle GRANT SELECT ON TABLES TO :"app_role";
