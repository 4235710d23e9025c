"""Named, ordered migrations. Each runs in one transaction and is recorded in ``schema_migrations``.

``PRAGMA user_version`` holds the number of the last one applied, so a database written by a newer
recap is recognised and refused instead of being misread.
"""

from __future__ import annotations

M001_INITIAL = """
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
CREATE INDEX ix_entry_week ON entry(week);
CREATE INDEX ix_entry_date ON entry(date);

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
CREATE INDEX ix_bookmark_added ON bookmark(added);

CREATE TABLE experiment (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    folder TEXT NOT NULL,
    project TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT ''
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
CREATE INDEX ix_run_experiment ON run(experiment_id, started);
CREATE INDEX ix_run_cache_key ON run(cache_key);

CREATE TABLE metric (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    step INTEGER,
    epoch INTEGER,
    value REAL NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX ix_metric_run_key ON metric(run_id, key, step);

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
CREATE UNIQUE INDEX ux_link_target ON link(
    entry_id, ifnull(bookmark_id, 0), ifnull(run_id, ''), ifnull(experiment_id, 0)
);
"""

# External-content FTS5 tables kept in sync by triggers (the SQLite docs' pattern).
M002_FTS = """
CREATE VIRTUAL TABLE entry_fts USING fts5(
    title, description, body, tags, categories,
    content='entry', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER entry_ai AFTER INSERT ON entry BEGIN
    INSERT INTO entry_fts(rowid, title, description, body, tags, categories)
    VALUES (new.id, new.title, new.description, new.body, new.tags, new.categories);
END;
CREATE TRIGGER entry_ad AFTER DELETE ON entry BEGIN
    INSERT INTO entry_fts(entry_fts, rowid, title, description, body, tags, categories)
    VALUES ('delete', old.id, old.title, old.description, old.body, old.tags, old.categories);
END;
CREATE TRIGGER entry_au AFTER UPDATE ON entry BEGIN
    INSERT INTO entry_fts(entry_fts, rowid, title, description, body, tags, categories)
    VALUES ('delete', old.id, old.title, old.description, old.body, old.tags, old.categories);
    INSERT INTO entry_fts(rowid, title, description, body, tags, categories)
    VALUES (new.id, new.title, new.description, new.body, new.tags, new.categories);
END;

CREATE VIRTUAL TABLE bookmark_fts USING fts5(
    title, description, note, url, tags,
    content='bookmark', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER bookmark_ai AFTER INSERT ON bookmark BEGIN
    INSERT INTO bookmark_fts(rowid, title, description, note, url, tags)
    VALUES (new.id, new.title, new.description, new.note, new.url, new.tags);
END;
CREATE TRIGGER bookmark_ad AFTER DELETE ON bookmark BEGIN
    INSERT INTO bookmark_fts(bookmark_fts, rowid, title, description, note, url, tags)
    VALUES ('delete', old.id, old.title, old.description, old.note, old.url, old.tags);
END;
CREATE TRIGGER bookmark_au AFTER UPDATE OF title, description, note, url, tags ON bookmark BEGIN
    INSERT INTO bookmark_fts(bookmark_fts, rowid, title, description, note, url, tags)
    VALUES ('delete', old.id, old.title, old.description, old.note, old.url, old.tags);
    INSERT INTO bookmark_fts(rowid, title, description, note, url, tags)
    VALUES (new.id, new.title, new.description, new.note, new.url, new.tags);
END;
-- Index rows written before this migration existed.
INSERT INTO entry_fts(entry_fts) VALUES ('rebuild');
INSERT INTO bookmark_fts(bookmark_fts) VALUES ('rebuild');
"""

# Trigram indexes beside the unicode61 ones of m002, so search finds substrings in any script
# ("transformer" in "TransformerNet", a Japanese word inside a sentence without spaces) while
# unicode61 keeps matching words without their accents ("creme" finds "Crème"; SQLite 3.40's
# trigram tokenizer cannot remove diacritics). Same columns, own triggers named <table>_trigram_*,
# rebuilt from the rows, so a database written before gains the new search. Queries shorter than
# a trigram fall back to LIKE in the search functions (recap/db/search.py).
M003_TRIGRAM = """
CREATE VIRTUAL TABLE entry_trigram USING fts5(
    title, description, body, tags, categories,
    content='entry', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER entry_trigram_ai AFTER INSERT ON entry BEGIN
    INSERT INTO entry_trigram(rowid, title, description, body, tags, categories)
    VALUES (new.id, new.title, new.description, new.body, new.tags, new.categories);
END;
CREATE TRIGGER entry_trigram_ad AFTER DELETE ON entry BEGIN
    INSERT INTO entry_trigram(entry_trigram, rowid, title, description, body, tags, categories)
    VALUES ('delete', old.id, old.title, old.description, old.body, old.tags, old.categories);
END;
CREATE TRIGGER entry_trigram_au AFTER UPDATE ON entry BEGIN
    INSERT INTO entry_trigram(entry_trigram, rowid, title, description, body, tags, categories)
    VALUES ('delete', old.id, old.title, old.description, old.body, old.tags, old.categories);
    INSERT INTO entry_trigram(rowid, title, description, body, tags, categories)
    VALUES (new.id, new.title, new.description, new.body, new.tags, new.categories);
END;

CREATE VIRTUAL TABLE bookmark_trigram USING fts5(
    title, description, note, url, tags,
    content='bookmark', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER bookmark_trigram_ai AFTER INSERT ON bookmark BEGIN
    INSERT INTO bookmark_trigram(rowid, title, description, note, url, tags)
    VALUES (new.id, new.title, new.description, new.note, new.url, new.tags);
END;
CREATE TRIGGER bookmark_trigram_ad AFTER DELETE ON bookmark BEGIN
    INSERT INTO bookmark_trigram(bookmark_trigram, rowid, title, description, note, url, tags)
    VALUES ('delete', old.id, old.title, old.description, old.note, old.url, old.tags);
END;
CREATE TRIGGER bookmark_trigram_au AFTER UPDATE OF title, description, note, url, tags
ON bookmark BEGIN
    INSERT INTO bookmark_trigram(bookmark_trigram, rowid, title, description, note, url, tags)
    VALUES ('delete', old.id, old.title, old.description, old.note, old.url, old.tags);
    INSERT INTO bookmark_trigram(rowid, title, description, note, url, tags)
    VALUES (new.id, new.title, new.description, new.note, new.url, new.tags);
END;
INSERT INTO entry_trigram(entry_trigram) VALUES ('rebuild');
INSERT INTO bookmark_trigram(bookmark_trigram) VALUES ('rebuild');
"""

# (number, name, sql). Append only; never edit a migration that has shipped.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "m001_initial", M001_INITIAL),
    (2, "m002_fts", M002_FTS),
    (3, "m003_trigram", M003_TRIGRAM),
]

HEAD = MIGRATIONS[-1][0]
