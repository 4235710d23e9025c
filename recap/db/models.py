"""Every table of the log as a SQLModel class: the typed view of the schema.

The schema itself is created by the SQL migrations in ``recap.db.migrations`` (so opening a
database never imports SQLModel); ``tests/test_db.py`` checks that these classes and the migrated
schema name the same columns. JSON-valued columns (tags, params, ...) are stored as text.
"""

from __future__ import annotations

from sqlmodel import Field, SQLModel


class Entry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True)
    title: str
    kind: str = "weekly"
    week: str | None = None
    date: str
    description: str = ""
    body: str = ""
    categories: str = "[]"
    tags: str = "[]"
    aliases: str = "[]"
    permalink: str | None = None
    draft: bool = False
    hidden: bool = False
    search_exclude: bool = False
    toc: bool = True
    final: bool = False
    source_path: str | None = Field(default=None, unique=True)
    created: str
    updated: str


class Feed(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(unique=True)
    title: str = ""
    tags: str = "[]"
    etag: str | None = None
    modified: str | None = None
    last_pull: str | None = None
    last_error: str | None = None
    added: str


class Bookmark(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    url: str
    # The normalised key when it differs from url, else NULL; unique as coalesce(url_key, url).
    url_key: str | None = None
    final_url: str | None = None
    title: str = ""
    description: str = ""
    note: str = ""
    tags: str = "[]"
    source: str = "cli"
    feed_id: int | None = Field(default=None, foreign_key="feed.id")
    # added, updated, read_at, checked_at are declared STAMP: integer milliseconds on disk, the
    # stamp text through recap.db.connect().
    added: str
    updated: str
    read_at: str | None = None
    archived: bool = False
    http_status: int | None = None
    check_error: str | None = None
    checked_at: str | None = None


class Experiment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    folder: str
    project: str = ""
    description: str = ""


class Run(SQLModel, table=True):
    id: str = Field(primary_key=True)
    experiment_id: int = Field(foreign_key="experiment.id")
    status: str = "running"
    params: str = "{}"
    seed: int | None = None
    summary: str = "{}"
    device: str | None = None
    started: str
    ended: str | None = None
    duration: float | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_diff_hash: str | None = None
    folder_hash: str | None = None
    environment: str = "{}"
    cache_key: str | None = None
    parent_id: str | None = Field(default=None, foreign_key="run.id")
    pid: int | None = None
    log_path: str | None = None
    error: str | None = None


class Metric(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id")
    key: str
    step: int | None = None
    epoch: int | None = None
    value: float
    time: str


class Artifact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id")
    path: str
    kind: str = "file"
    sha256: str
    size: int
    metadata_: str = Field(default="{}", sa_column_kwargs={"name": "metadata"})


class Link(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="entry.id")
    bookmark_id: int | None = Field(default=None, foreign_key="bookmark.id")
    run_id: str | None = Field(default=None, foreign_key="run.id")
    experiment_id: int | None = Field(default=None, foreign_key="experiment.id")
    note: str = ""
    created: str
    reason: str = "manual"


TABLES = [Entry, Feed, Bookmark, Experiment, Run, Metric, Artifact, Link]


def engine(path=None):
    """A SQLAlchemy engine on the log's (migrated) database, with the same pragmas."""
    from sqlalchemy import event
    from sqlmodel import create_engine

    from recap import db, paths

    path = path or paths.db_path()
    db.connect(path).close()  # create and migrate through the one code path
    eng = create_engine(f"sqlite:///{path}")

    @event.listens_for(eng, "connect")
    def _on_connect(dbapi_conn, _record):
        db._pragmas(dbapi_conn)

    return eng
