-- 003_roles: least privilege. The HTTP front runs as a member of orderflow_api, which may
-- EXECUTE the API functions (SECURITY DEFINER, fixed search_path: they run as the schema owner)
-- and has no right on any table. The grants themselves are in db/functions/99_grants.sql, which
-- is re-applied at every start so that new functions are covered.
-- Creating the role (and commenting on it) needs CREATEROLE. A schema owner without it works
-- when orderflow_api already exists (created once by an administrator: CREATE ROLE
-- orderflow_api NOLOGIN); the role's comment is then left to whoever created it.
DO $$
DECLARE
    v_may_manage_roles boolean;
BEGIN
    SELECT rolsuper OR rolcreaterole INTO v_may_manage_roles
      FROM pg_roles WHERE rolname = current_user;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orderflow_api') THEN
        IF NOT v_may_manage_roles THEN
            RAISE EXCEPTION 'role orderflow_api does not exist and % may not create it', current_user
                USING ERRCODE = '42501',
                      HINT = 'As a superuser or a role with CREATEROLE, run once: CREATE ROLE orderflow_api NOLOGIN';
        END IF;
        CREATE ROLE orderflow_api NOLOGIN;
    END IF;
    IF v_may_manage_roles THEN
        COMMENT ON ROLE orderflow_api IS 'orderflow front: may execute the orderflow API functions, nothing else.';
    END IF;
END
$$;

REVOKE ALL ON SCHEMA orderflow FROM PUBLIC;
GRANT USAGE ON SCHEMA orderflow TO orderflow_api;
REVOKE ALL ON ALL TABLES IN SCHEMA orderflow FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA orderflow FROM PUBLIC;
-- Functions created later by the owner are not executable by PUBLIC either.
ALTER DEFAULT PRIVILEGES IN SCHEMA orderflow REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
