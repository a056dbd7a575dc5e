-- 003_roles: least privilege. The HTTP front runs as a member of orderflow_api, which may
-- EXECUTE the API functions (SECURITY DEFINER, fixed search_path: they run as the schema owner)
-- and has no right on any table. The grants themselves are in db/functions/99_grants.sql, which
-- is re-applied at every start so that new functions are covered.
-- Creating the role needs CREATEROLE; a database without it must create orderflow_api first.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        CREATE ROLE orderflow_api NOLOGIN;
    END IF;
END
$$;
COMMENT ON ROLE orderflow_api IS 'orderflow front: may execute the orderflow API functions, nothing else.';

REVOKE ALL ON SCHEMA orderflow FROM PUBLIC;
GRANT USAGE ON SCHEMA orderflow TO orderflow_api;
REVOKE ALL ON ALL TABLES IN SCHEMA orderflow FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA orderflow FROM PUBLIC;
-- Functions created later by the owner are not executable by PUBLIC either.
ALTER DEFAULT PRIVILEGES IN SCHEMA orderflow REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
