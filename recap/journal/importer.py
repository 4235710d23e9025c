"""Import existing posts: Jekyll / fastpages, Quarto and MkDocs (front matter + Markdown).

Everything is read and checked first, then written in one transaction, so a bad file anywhere
means nothing is written. Re-importing a file (same resolved path) updates its entry.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath

from recap import db, markup, paths
from recap.errors import InvalidInput
from recap.journal import frontmatter, weeks
from recap.journal.entries import slugify, unique_slug
from recap.journal.sanitize import describe, sanitize
from recap.timeutil import stamp

POST_SUFFIXES = {".md", ".markdown", ".qmd"}
JEKYLL_NAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.+)$")
# A hand-made table of contents: a run of bullet links to anchors at the top of the body.
TOC_LINE = re.compile(r"^\s*[*+-]\s+\[[^\]]*\]\(#[^)]*\)\s*$")
KNOWN_DROPPED = {
    "layout",
    "comments",
    "badges",
    "branch",
    "nb_path",
    "image",
    "sticky_rank",
    "author",
    "format",
    "jupyter",
    "execute",
    "editor",
    "output-file",
}


@dataclass
class Parsed:
    source: Path
    values: dict
    images: list[tuple[str, Path, str]] = field(default_factory=list)  # (ref, file, media rel)
    mapped: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    skipped_images: list[dict] = field(default_factory=list)
    sanitised: dict = field(default_factory=dict)
    not_allowed: list[str] = field(default_factory=list)


def find_posts(targets: list[Path]) -> list[Path]:
    files: list[Path] = []
    for target in targets:
        target = Path(target)
        if not target.exists():
            raise InvalidInput(f"no such file or folder: {target}")
        if target.is_dir():
            files += sorted(
                p
                for p in target.rglob("*")
                if p.suffix.lower() in POST_SUFFIXES and p.is_file() and not p.name.startswith(".")
            )
        elif target.suffix.lower() in POST_SUFFIXES:
            files.append(target)
        else:
            raise InvalidInput(f"{target}: not a Markdown post (.md, .markdown, .qmd)")
    return list(dict.fromkeys(p.resolve() for p in files))


def _as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        parts = re.split(r"[,\s]+", value.strip()) if "," in value or " " in value else [value]
        return [p for p in (s.strip() for s in parts) if p]
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def _date(value, source: Path) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in ("%m/%d/%Y", "%B %d, %Y", "%b %d, %Y", "%d %B %Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    try:
        return weeks.parse_date(text)
    except InvalidInput:
        raise InvalidInput(f"{source}: unreadable date {text!r}") from None


# Jekyll's built-in permalink styles.
PERMALINK_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
_PLACEHOLDER = re.compile(r":([a-z_]+)")


def expand_permalink(
    pattern: str, day: date, title: str, categories: list[str]
) -> tuple[str, list[str]]:
    """A Jekyll permalink with its placeholders filled from the post (``/:title-2/`` ->
    ``/jekyll-post-2/``), so the old URL can redirect; returns it and unknown placeholders."""
    pattern = PERMALINK_STYLES.get(pattern.strip(), pattern.strip())
    values = {
        "year": f"{day.year:04d}",
        "short_year": f"{day.year % 100:02d}",
        "month": f"{day.month:02d}",
        "i_month": str(day.month),
        "short_month": day.strftime("%b"),
        "long_month": day.strftime("%B"),
        "day": f"{day.day:02d}",
        "i_day": str(day.day),
        "y_day": f"{day.timetuple().tm_yday:03d}",
        "week": f"{day.isocalendar()[1]:02d}",
        "short_day": day.strftime("%a"),
        "long_day": day.strftime("%A"),
        "hour": "00",
        "minute": "00",
        "second": "00",
        "title": title,
        "slug": re.sub(r"[^0-9A-Za-z]+", "-", title).strip("-").lower(),
        "name": title,
        "categories": "/".join(dict.fromkeys(c.lower() for c in categories)),
        "output_ext": ".html",
    }
    unknown: list[str] = []

    def fill(m: re.Match) -> str:
        if m.group(1) in values:
            return values[m.group(1)]
        unknown.append(m.group(0))
        return m.group(0)

    out = _PLACEHOLDER.sub(fill, pattern)
    out = re.sub(r"/{2,}", "/", out)
    return out, unknown


def _strip_toc(body: str) -> tuple[str, int]:
    lines = body.split("\n")
    i = 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    start = i
    while i < len(lines) and TOC_LINE.match(lines[i]):
        i += 1
    if i - start >= 2:  # one lone link is content, a run of anchors is a table of contents
        return "\n".join(lines[i:]).lstrip("\n"), i - start
    return body, 0


def parse_post(path: Path) -> Parsed:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    meta, body = frontmatter.split(text, source=str(path))
    parsed = Parsed(source=path, values={})
    v = parsed.values

    stem = path.stem
    m = JEKYLL_NAME.match(stem)
    name_date = None
    if m:
        name_date = weeks.parse_date(f"{m.group(1)}-{m.group(2)}-{m.group(3)}")
        stem = m.group(4)
    if path.name in ("index.md", "index.qmd"):
        stem = path.parent.name
    raw_date = meta.get("date")
    if isinstance(raw_date, dict):  # MkDocs Material: date: {created: ..., updated: ...}
        raw_date = raw_date.get("created")
    day = _date(raw_date, path) or name_date
    if day is None:
        raise InvalidInput(f"{path}: no date in front matter or file name")
    v["date"] = day.isoformat()
    v["week"] = weeks.week_of(day)
    v["title"] = str(meta.get("title") or stem.replace("-", " ").title())
    v["description"] = str(meta.get("description") or meta.get("subtitle") or "")
    v["categories"] = _as_list(meta.get("categories"))
    v["tags"] = _as_list(meta.get("tags"))
    v["aliases"] = _as_list(meta.get("aliases")) + _as_list(meta.get("redirect_from"))
    v["permalink"] = None
    if meta.get("permalink"):
        v["permalink"], unknown = expand_permalink(
            str(meta["permalink"]), day, str(meta.get("slug") or stem), v["categories"]
        )
        if unknown:
            parsed.dropped.append(
                f"permalink placeholder(s) {', '.join(unknown)} (not Jekyll's; kept as written)"
            )
    v["toc"] = bool(meta.get("toc", True))
    v["hidden"] = bool(meta.get("hide", False))
    v["search_exclude"] = bool(meta.get("search_exclude", False))
    v["draft"] = bool(meta.get("draft", False)) or meta.get("published") is False
    v["slug"] = slugify(str(meta.get("slug") or stem))
    for key in (
        "title",
        "date",
        "description",
        "categories",
        "tags",
        "aliases",
        "permalink",
        "toc",
        "hide",
        "search_exclude",
        "draft",
        "published",
        "slug",
        "subtitle",
        "redirect_from",
    ):
        if key in meta:
            parsed.mapped.append(key)
    for key in meta:
        if key not in parsed.mapped:
            parsed.dropped.append(f"front matter '{key}'")

    h1 = re.match(r"\A\s*# (.+?)\s*#*\s*\n", body)
    if h1 and not meta.get("title"):  # MkDocs posts take their title from the first heading
        v["title"] = h1.group(1).strip()
        body = body[h1.end() :]
        parsed.mapped.append("first heading as title")
    body, toc_lines = _strip_toc(body)
    if toc_lines:
        parsed.dropped.append(f"hand-made table of contents ({toc_lines} lines)")
    body, removed = sanitize(body)
    if removed:
        parsed.sanitised = dict(removed)
        parsed.dropped.append(f"sanitised HTML: {describe(removed)} removed")
    v["body"] = body.strip() + "\n"

    refs = [m.group(2) for m in markup.MD_IMAGE.finditer(body)]
    refs += [m.group(1) for m in markup.HTML_IMAGE.finditer(body)]
    home = path.parent.resolve()
    for ref in refs:
        local = markup.local_ref(ref)
        if local is None:
            continue
        local = PurePosixPath(local)
        file = (path.parent / str(local)).resolve()
        # Mirror the reference under media/<slug>/ so it resolves next to the post unchanged.
        rel = PurePosixPath(*[p for p in local.parts if p not in (".", "..")])
        if not file.exists():
            parsed.missing.append(ref)
            continue
        # Only files of the post's own folder tree (after '..' and symlinks), and only images.
        if not file.is_relative_to(home):
            reason = "outside the post's folder"
        elif not file.is_file():
            reason = "not a file"
        else:
            reason = None if is_image(file) else "not an image"
        if reason:
            parsed.skipped_images.append({"ref": ref, "reason": reason})
            parsed.dropped.append(f"image {ref} ({reason}; not copied)")
        else:
            parsed.images.append((ref, file, rel.as_posix()))
    return parsed


_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def is_image(file: Path) -> bool:
    """An image by content: png/jpeg/gif/webp/svg magic, or a file PIL can open."""
    try:
        with open(file, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"<svg", b"<?xml", b"<!--", b"<!DOCTYPE svg")) and b"<svg" in head:
        return True
    try:
        from PIL import Image

        with Image.open(file) as img:
            img.verify()
        return True
    except Exception:  # noqa: BLE001 - anything PIL cannot read is not an image to copy
        return False


def import_posts(conn: sqlite3.Connection, targets: list[Path]) -> list[dict]:
    """Import every post under ``targets``; returns one report per post."""
    files = find_posts(targets)
    if not files:
        raise InvalidInput("no posts found (looked for .md, .markdown, .qmd)")
    parsed = [parse_post(p) for p in files]  # every file is checked before anything is written
    root = paths.log_root()
    allowed = allowed_categories(root)
    for item in parsed:
        _check_categories(item, allowed)
    now = stamp()
    reports = []
    with db.transaction(conn):
        for item in parsed:
            v = item.values
            existing = conn.execute(
                "SELECT id, slug FROM entry WHERE source_path = ?", (str(item.source),)
            ).fetchone()
            slug = unique_slug(conn, v["slug"], exclude_id=existing["id"] if existing else None)
            cols = {
                "slug": slug,
                "title": v["title"],
                "kind": "post",
                "week": v["week"],
                "date": v["date"],
                "description": v["description"],
                "body": v["body"],
                "categories": json.dumps(v["categories"], ensure_ascii=False),
                "tags": json.dumps(v["tags"], ensure_ascii=False),
                "aliases": json.dumps(v["aliases"], ensure_ascii=False),
                "permalink": v["permalink"],
                "draft": int(v["draft"]),
                "hidden": int(v["hidden"]),
                "search_exclude": int(v["search_exclude"]),
                "toc": int(v["toc"]),
                "source_path": str(item.source),
                "updated": now,
            }
            if existing:
                sets = ", ".join(f"{k} = ?" for k in cols)
                conn.execute(
                    f"UPDATE entry SET {sets} WHERE id = ?", (*cols.values(), existing["id"])
                )
                entry_id, action = existing["id"], "updated"
            else:
                cols["created"] = now
                names = ", ".join(cols)
                entry_id = conn.execute(
                    f"INSERT INTO entry ({names}) VALUES ({', '.join('?' * len(cols))})",
                    tuple(cols.values()),
                ).lastrowid
                action = "added"
            copied = _copy_images(root, slug, item.images)
            reports.append(
                {
                    "file": str(item.source),
                    "action": action,
                    "id": entry_id,
                    "slug": slug,
                    "title": v["title"],
                    "date": v["date"],
                    "mapped": item.mapped,
                    "dropped": item.dropped,
                    "images_copied": copied,
                    "images_missing": item.missing,
                    "images_skipped": item.skipped_images,
                    "sanitised": item.sanitised,
                    "categories_not_allowed": item.not_allowed,
                }
            )
    return reports


def allowed_categories(root: Path) -> list[str] | None:
    """The blog plugin's ``categories_allowed`` in the log's mkdocs.yml (None: anything goes)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # !ENV and friends
    try:
        cfg = yaml.load((root / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)
    except (OSError, yaml.YAMLError, ValueError):
        return None
    for plugin in (cfg or {}).get("plugins") or [] if isinstance(cfg, dict) else []:
        if isinstance(plugin, dict):
            for name, opts in plugin.items():
                if name in ("blog", "material/blog") and isinstance(opts, dict):
                    allowed = opts.get("categories_allowed")
                    return [str(c) for c in allowed] if allowed else None
    return None


def _check_categories(item: Parsed, allowed: list[str] | None) -> None:
    """A category the blog does not allow is kept, and the report says so with the config line
    that allows it (the site build would otherwise leave the post out of that category)."""
    if allowed is None:
        return
    outside = [c for c in item.values["categories"] if c not in allowed]
    if not outside:
        return
    wanted = ", ".join(json.dumps(c, ensure_ascii=False) for c in [*allowed, *outside])
    item.not_allowed = outside
    item.dropped.append(
        f"categor{'y' if len(outside) == 1 else 'ies'} {', '.join(map(repr, outside))} not in "
        f"the blog's categories_allowed; to allow, set in mkdocs.yml (plugins: blog:): "
        f"categories_allowed: [{wanted}]"
    )


def _copy_images(root: Path, slug: str, images: list[tuple[str, Path, str]]) -> int:
    base = paths.media_dir(root) / slug
    count = 0
    for _ref, file, rel in images:
        target = paths.inside(paths.media_dir(root), base / rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != file.read_bytes():
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(file, tmp)
            tmp.replace(target)
        count += 1
    return count
