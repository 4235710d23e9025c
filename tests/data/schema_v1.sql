BEGIN TRANSACTION;
CREATE TABLE artifact (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'file',
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (run_id, path)
);
CREATE TABLE bookmark (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    url_key TEXT NOT NULL UNIQUE,
    final_url TEXT,
    title TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL DEFAULT 'cli',
    feed_id INTEGER REFERENCES feed(id) ON DELETE SET NULL,
    added TEXT NOT NULL,
    updated TEXT NOT NULL,
    read_at TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    check_error TEXT,
    checked_at TEXT
);
INSERT INTO "bookmark" VALUES(1,'https://docs.fast.ai/','https://docs.fast.ai',NULL,'fastai docs','','','["fastai"]','cli',NULL,'2021-01-20T10:00:00.000Z','2021-01-20T10:00:00.000Z',NULL,0,NULL,NULL,NULL);
CREATE TABLE entry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'weekly',
    week TEXT,
    date TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    categories TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '[]',
    permalink TEXT,
    draft INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    search_exclude INTEGER NOT NULL DEFAULT 0,
    toc INTEGER NOT NULL DEFAULT 1,
    source_path TEXT UNIQUE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
INSERT INTO "entry" VALUES(1,'weekly-recap-2021-w03','Weekly Recap','weekly','2021-W03','2021-01-24','','Tried Barracuda with a fastai model.','[]','[]','[]',NULL,0,0,0,1,NULL,'2021-01-24T10:00:00.000Z','2021-01-24T10:00:00.000Z');
CREATE TABLE experiment (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    folder TEXT NOT NULL,
    project TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE feed (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    etag TEXT,
    modified TEXT,
    last_pull TEXT,
    last_error TEXT,
    added TEXT NOT NULL
);
CREATE TABLE link (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id INTEGER NOT NULL REFERENCES entry(id) ON DELETE CASCADE,
    bookmark_id INTEGER REFERENCES bookmark(id) ON DELETE CASCADE,
    run_id TEXT REFERENCES run(id) ON DELETE CASCADE,
    experiment_id INTEGER REFERENCES experiment(id) ON DELETE CASCADE,
    note TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    CHECK ((bookmark_id IS NOT NULL) + (run_id IS NOT NULL) + (experiment_id IS NOT NULL) = 1)
);
CREATE TABLE metric (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step INTEGER,
    epoch INTEGER,
    value REAL NOT NULL,
    time TEXT NOT NULL
);
CREATE TABLE run (
    id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiment(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'running',
    params TEXT NOT NULL DEFAULT '{}',
    seed INTEGER,
    summary TEXT NOT NULL DEFAULT '{}',
    device TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    duration REAL,
    git_commit TEXT,
    git_dirty INTEGER,
    git_diff_hash TEXT,
    folder_hash TEXT,
    environment TEXT NOT NULL DEFAULT '{}',
    cache_key TEXT,
    parent_id TEXT REFERENCES run(id) ON DELETE SET NULL,
    pid INTEGER,
    log_path TEXT,
    error TEXT
);
CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL);
INSERT INTO "schema_migrations" VALUES(1,'m001_initial','2026-11-01T00:00:00.000Z');
CREATE INDEX ix_entry_week ON entry(week);
CREATE INDEX ix_entry_date ON entry(date);
CREATE INDEX ix_bookmark_added ON bookmark(added);
CREATE INDEX ix_run_experiment ON run(experiment_id, started);
CREATE INDEX ix_run_cache_key ON run(cache_key);
CREATE INDEX ix_metric_run_key ON metric(run_id, key, step);
CREATE UNIQUE INDEX ux_link_target ON link(
    entry_id, ifnull(bookmark_id, 0), ifnull(run_id, ''), ifnull(experiment_id, 0)
);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('entry',1);
INSERT INTO "sqlite_sequence" VALUES('bookmark',1);
COMMIT;
PRAGMA user_version = 1;
