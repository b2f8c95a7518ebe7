-- The scheduler's own tables (docs/scheduler.md).

-- One row per job, written at start for every job the code knows.
CREATE TABLE jobs (
    name            text PRIMARY KEY,
    paused          boolean NOT NULL DEFAULT false,
    paused_by       text,
    paused_at       timestamptz,
    -- Every window up to here has a run or a skip row; the next tick plans
    -- the windows after it. Starts at the job's first registration, so a new
    -- job does not catch up on history.
    planned_through timestamptz NOT NULL,
    -- The last fencing token handed out for this job: each claim takes the
    -- next, so a takeover's token is always greater than the stale holder's.
    fence           bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL
);

-- One row per window: a run (queued, running, done) or a skip with its
-- reason. Unique on (job, fire_at): however many replicas plan a window,
-- one row exists, and the claim on it is the only way to run it.
CREATE TABLE job_runs (
    id           uuid PRIMARY KEY,
    job          text NOT NULL REFERENCES jobs (name),
    fire_at      timestamptz NOT NULL,
    as_of        timestamptz NOT NULL,
    trigger      text NOT NULL CHECK (trigger IN ('schedule', 'catch_up', 'manual')),
    state        text NOT NULL
                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'skipped')),
    reason       text,
    requested_by text,
    -- The claim: holder, lease and the fencing token every write must match.
    holder       text,
    lease_until  timestamptz,
    fence        bigint NOT NULL DEFAULT 0,
    checkpoint   text,
    processed    bigint NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    -- A transient failure waits until here before the next claim.
    retry_at     timestamptz,
    error        text,
    created_at   timestamptz NOT NULL,
    started_at   timestamptz,
    finished_at  timestamptz,
    CONSTRAINT job_runs_one_per_window UNIQUE (job, fire_at),
    CONSTRAINT job_runs_running_has_lease
        CHECK (state <> 'running' OR (holder IS NOT NULL AND lease_until IS NOT NULL)),
    CONSTRAINT job_runs_skipped_says_why CHECK (state <> 'skipped' OR reason IS NOT NULL)
);

-- The claim's search: a job's unfinished runs, oldest window first.
CREATE INDEX job_runs_unfinished ON job_runs (job, fire_at)
    WHERE state IN ('queued', 'running');
-- ListJobRuns over every job, newest window first (per job, the unique
-- index serves).
CREATE INDEX job_runs_newest ON job_runs (fire_at DESC, id DESC);

-- One statistics snapshot per local day (STATS_TIME_ZONE).
CREATE TABLE daily_stats (
    day         date PRIMARY KEY,
    time_zone   text NOT NULL,
    snapshot    jsonb NOT NULL,
    run_id      uuid NOT NULL,
    computed_at timestamptz NOT NULL
);
