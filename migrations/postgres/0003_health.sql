-- One row per prober: readiness checks and the store watcher write here, so "ready" means "can commit".
CREATE TABLE IF NOT EXISTS health (
    node TEXT PRIMARY KEY,
    checked_ms BIGINT NOT NULL
);
