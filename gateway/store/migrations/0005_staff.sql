-- Staff accounts, their bearer tokens and browser sessions, and the audit log (spec/http-api.md "Staff
-- routes", spec/operations.md "audit log"). Secrets are stored only as hashes: passwords as scrypt, tokens,
-- session ids and CSRF tokens as SHA-256 (they are 32 random bytes, so a fast hash is enough).
CREATE TABLE staff_users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
    role          text NOT NULL CHECK (role IN ('support', 'treasury', 'admin')),
    password_hash text NOT NULL CHECK (password_hash LIKE 'scrypt$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE staff_tokens (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea  NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES staff_users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX staff_tokens_user ON staff_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE staff_sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_hash bytea  NOT NULL UNIQUE CHECK (length(session_hash) = 32),
    user_id      bigint NOT NULL REFERENCES staff_users (id),
    csrf_hash    bytea  NOT NULL CHECK (length(csrf_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX staff_sessions_user ON staff_sessions (user_id) WHERE revoked_at IS NULL;

-- Every staff action and every configuration reload; never updated or deleted.
CREATE TABLE audit_log (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL CHECK (length(actor) BETWEEN 1 AND 128),  -- a staff username, 'cli' or 'system'
    action text NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    target text,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb,
    source text                                                     -- the client address, when there is one
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION gw_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gw_append_only();
