"""Issue 14 item 5 and issue 16 item 2 (search): substrings in any script, short queries, a
database from before the trigram migration, and a bounded top-k."""

from __future__ import annotations

import json
import sqlite3

from recap import db as recap_db


def _ids(result) -> list[int]:
    assert result.exit_code == 0, result.output
    return [b["id"] for b in json.loads(result.stdout)]


def _add(cli, url, title, *extra):
    r = cli("bookmark", "add", url, "--offline", "--title", title, *extra)
    assert r.exit_code == 0, r.output


def test_bookmark_search_finds_substrings_in_any_script(cli, db):
    _add(cli, "https://a.example/1", "ユニコードのページ")
    _add(cli, "https://a.example/2", "日本語の文章を読む")
    _add(cli, "https://a.example/3", "TransformerNet for style transfer")
    _add(cli, "https://a.example/4", "Crème brûlée")
    assert _ids(cli("bookmark", "search", "ユニコード", "--json")) == [1]
    assert _ids(cli("bookmark", "search", "日本語", "--json")) == [2]
    assert _ids(cli("bookmark", "search", "transformer", "--json")) == [3]
    assert _ids(cli("bookmark", "search", "former", "--json")) == [3]
    # Accent-free words still find accented ones (the unicode61 index beside the trigram one).
    assert _ids(cli("bookmark", "search", "creme", "--json")) == [4]
    # Shorter than a trigram: LIKE, newest first; "%" and "_" are literal.
    assert _ids(cli("bookmark", "search", "語", "--json")) == [2]
    assert _ids(cli("bookmark", "search", "Ne", "--json")) == [3]
    assert _ids(cli("bookmark", "search", "%", "--json")) == []
    r = cli("bookmark", "search", "語")
    assert "日本語の文章を読む" in r.stdout


def test_entry_search_finds_substrings_with_snippets(cli):
    body = "今週はユニコードのページを読んだ。TransformerNet を Unity に載せた。\n"
    r = cli("new", "--week", "2021-W03", "--body-file", "-", input=body)
    assert r.exit_code == 0, r.output
    hits = json.loads(cli("search", "ユニコード", "--json").stdout)
    assert len(hits) == 1 and "[ユニコード]" in hits[0]["snippet"]
    hits = json.loads(cli("search", "transformer", "--json").stdout)
    assert len(hits) == 1 and "[Transformer]" in hits[0]["snippet"]
    hits = json.loads(cli("search", "読ん", "--json").stdout)  # two characters: LIKE
    assert len(hits) == 1 and "[読ん]" in hits[0]["snippet"]
    assert json.loads(cli("search", "zz", "--json").stdout) == []


def test_a_database_from_before_gains_substring_search(log_root, cli):
    """A log at schema 2 (unicode61 only) keeps its rows and finds substrings after opening."""
    from recap.db.migrations import MIGRATIONS

    path = log_root / "recap.db"
    path.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    for number, _name, sql in MIGRATIONS[:2]:
        for statement in recap_db._split(sql):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO bookmark (url, url_key, title, added, updated) VALUES "
        "('https://x.example/', 'https://x.example/', 'TransformerNet ユニコードのページ', 't', 't')"
    )
    conn.close()
    assert _ids(cli("bookmark", "search", "ユニコード", "--json")) == [1]
    assert _ids(cli("bookmark", "search", "former", "--json")) == [1]
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] >= 3
    names = {r[0] for r in check.execute("SELECT name FROM schema_migrations")}
    assert "m003_trigram" in names
    check.execute("INSERT INTO bookmark_trigram(bookmark_trigram) VALUES ('integrity-check')")


def test_search_with_a_limit_ranks_a_bounded_candidate_set(cli, db):
    """Cost follows the limit: with --limit, ranking reads at most the newest candidates."""
    from recap.links import store

    conn = recap_db.connect()
    with recap_db.transaction(conn):
        for i in range(3000):
            title = "vision paper" if i != 5 else "vision vision vision"
            conn.execute(
                "INSERT INTO bookmark (url, url_key, title, added, updated) VALUES (?,?,?,?,?)",
                (f"https://v.example/{i}", f"https://v.example/{i}", title, "t", "t"),
            )
    everything = store.search(conn, "vision", limit=None)
    assert len(everything) == 3000
    assert everything[0]["id"] == 6  # bm25 over every hit
    top = store.search(conn, "vision", limit=10)
    assert len(top) == 10
    # The best match lies outside the newest 2,000 candidates: a bounded top-k does not see it.
    assert store.MIN_CANDIDATES == 2000 and 6 not in [r["id"] for r in top]
    assert [r["id"] for r in store.search(conn, "vision", limit=1000)][0] == 6


def test_search_reading_only_some_columns_finds_the_same_rows_in_the_same_order(cli, db):
    """The table view reads only the columns it shows; word hits, substring-only hits and the
    LIKE path come back as with every column."""
    from recap.links import store

    _add(cli, "https://a.example/1", "TransformerNet for style transfer", "--tag", "ml")
    _add(cli, "https://a.example/2", "A transformer paper", "--note", "transformer transformer")
    _add(cli, "https://a.example/3", "Transformers explained")
    _add(cli, "https://a.example/4", "Nothing here")
    conn = recap_db.connect()
    shown = ("added", "title", "url", "tags")
    for query in ("transformer", "former", "ml", "A"):
        for limit in (None, 1, 2, 100):
            full = store.search(conn, query, limit=limit)
            part = store.search(conn, query, limit=limit, columns=shown)
            assert [tuple(r) for r in part] == [
                (r["id"], *(r[c] for c in shown), r["rank"]) for r in full
            ], (query, limit)
            assert part and part[0].keys() == ["id", *shown, "rank"]
    # The word hit first, then the substring-only ones ("TransformerNet", "Transformers").
    ids = [r["id"] for r in store.search(conn, "transformer", None, columns=("url",))]
    assert ids[0] == 2 and sorted(ids[1:]) == [1, 3]
    result = cli("bookmark", "search", "transformer", "--limit", "0")
    assert result.exit_code == 0 and "https://a.example/2" in result.stdout
    assert "https://a.example/4" not in result.stdout
