-- Failed staff sign-ins (spec/http-api.md "Failed sign-ins"): counted per claimed username and per client
-- address within [staff] signin_window_minutes, in PostgreSQL so that every gateway instance refuses alike.
-- Only failures are rows here (refusals are audited, not counted: a refused attempt never extends the wait).
-- Append-only for the runtime: the window is a WHERE clause; the indexes keep the count cheap however many
-- old rows there are.
CREATE TABLE signin_failures (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    username text NOT NULL CHECK (length(username) BETWEEN 1 AND 128),  -- as claimed, not necessarily a user
    source   text NOT NULL CHECK (length(source) <= 64)                  -- the client address ('' if none)
);
CREATE INDEX signin_failures_username ON signin_failures (username, at);
CREATE INDEX signin_failures_source ON signin_failures (source, at);
