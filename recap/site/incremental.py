"""Incremental publishing: skip MkDocs when nothing it reads changed, reuse Markdown renders,
and move only changed bytes into ``site/``.

Three pieces, all keyed on content, never on timestamps alone:

* :func:`inputs_key` hashes every file under ``docs/``, ``mkdocs.yml`` (plus the theme's
  ``custom_dir`` and hooks), the versions of MkDocs, the theme and every installed MkDocs plugin
  and Markdown extension package, the alias redirects and the build options. Unchanged key and an
  intact ``site/`` (every file as the last build left it) mean there is nothing to do.
* :class:`RenderMemo` caches the Markdown -> HTML conversion of pages and blog excerpts (about
  60% of a Material blog build) by page source, page URL, the set of files of the site and the
  configuration, so one changed post converts one post (and re-renders the index pages around
  it from cached excerpts).
* :func:`sync_tree` moves a fresh build from a staging folder into ``site/``, replacing only the
  files whose bytes differ and removing the ones the build no longer makes, so rsync or
  gh-deploy push only what changed.

The state lives in ``.recap-cache/site/`` beside ``site/`` (never inside it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
from pathlib import Path

STATE_VERSION = 1
CACHE_DIR = ".recap-cache"
# Packages whose versions change what MkDocs makes from the same docs/ (plugins and themes are
# added from the installed entry points).
_CORE_PACKAGES = ("mkdocs", "markdown", "pymdown-extensions", "jinja2", "pygments")


def cache_dir(root: Path) -> Path:
    return root / CACHE_DIR / "site"


def _versions() -> list[tuple[str, str]]:
    from importlib import metadata

    names = set(_CORE_PACKAGES)
    for group in ("mkdocs.plugins", "mkdocs.themes", "markdown.extensions"):
        for ep in metadata.entry_points(group=group):
            if ep.dist is not None:
                names.add(ep.dist.name.lower())
    out = []
    for name in sorted(names):
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return out


def _file_digest(path: Path, st: os.stat_result, known: dict) -> str:
    """sha256 of a file, reusing the last build's digest when size, mtime and inode match."""
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    old = known.get(str(path))
    if old and old[:3] == stamp:
        return old[3]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    digest = h.hexdigest()
    known[str(path)] = [*stamp, digest]
    return digest


def _tree(folder: Path, known: dict, h, label: str) -> None:
    if not folder.is_dir():
        h.update(f"{label}:absent\n".encode())
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
                digest = _file_digest(path, st, known)
            except OSError:
                continue
            rel = path.relative_to(folder).as_posix()
            h.update(f"{label}/{rel}\0{digest}\n".encode())


def inputs_key(
    root: Path, docs: Path, config_file: Path, extra: dict, digests: dict
) -> tuple[str, str, dict]:
    """The content hash of everything a build reads.

    ``digests`` is the last build's per-file cache (path -> [size, mtime_ns, inode, sha256]).
    Returns (key of the whole build, key of the configuration alone, updated digests)."""
    from recap.site.render import read_mkdocs_yml

    known = dict(digests)
    h = hashlib.sha256()
    h.update(json.dumps([STATE_VERSION, _versions()]).encode())
    h.update(config_file.read_bytes() if config_file.is_file() else b"")
    cfg = read_mkdocs_yml(root)
    theme = cfg.get("theme") if isinstance(cfg.get("theme"), dict) else {}
    for item in [theme.get("custom_dir"), *list(cfg.get("hooks") or [])]:
        if isinstance(item, str) and item:
            path = root / item
            if path.is_file():
                h.update(f"hook:{item}\0{_file_digest(path, path.stat(), known)}\n".encode())
            else:
                _tree(path, known, h, f"extra:{item}")
    config_key = h.hexdigest()
    h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    _tree(docs, known, h, "docs")
    # Forget files that are gone, so the cache does not grow with deleted posts.
    live = {k: v for k, v in known.items() if os.path.lexists(k)}
    return h.hexdigest(), config_key, live


def assets_key(docs: Path, digests: dict) -> str:
    """Digest of the files of docs/ that are not Markdown pages (from the inputs' digests).

    recap's own manifest is left out: MkDocs never reads it (a dot file), and it changes with
    every edited post, which would make every page's template render again."""
    from recap.site.manifest import MANIFEST

    prefix = str(docs) + os.sep
    items = sorted(
        (k[len(prefix) :], v[3])
        for k, v in digests.items()
        if k.startswith(prefix) and not k.endswith(".md") and k[len(prefix) :] != MANIFEST
    )
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()


def site_listing(site: Path) -> dict[str, list[int]]:
    """Every file under site/ as rel path -> [size, mtime_ns]: cheap to compare, no reading."""
    out = {}
    if not site.is_dir():
        return out
    for dirpath, _dirnames, filenames in os.walk(site):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            out[path.relative_to(site).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def load_state(root: Path) -> dict:
    try:
        state = json.loads((cache_dir(root) / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) and state.get("version") == STATE_VERSION else {}


def save_state(root: Path, state: dict) -> None:
    from recap.fsutil import write_if_changed

    cache_dir(root).mkdir(parents=True, exist_ok=True)
    write_if_changed(
        cache_dir(root) / "state.json", json.dumps({**state, "version": STATE_VERSION}) + "\n"
    )


# -- syncing a staged build into site/ ---------------------------------------------------------


def staging_dir(cache: Path) -> Path:
    """A fresh folder for MkDocs to build into: in memory (/dev/shm) where there is one, since
    most of what it holds is compared and thrown away; else beside the cache."""
    import tempfile

    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else cache
    return Path(tempfile.mkdtemp(prefix="recap-site-", dir=base))


def _move(src: Path, dst: Path) -> None:
    """src replaces dst by a rename; across file systems through a temporary file beside dst."""
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        import errno

        if exc.errno != errno.EXDEV:
            raise
    import shutil
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as fh:
            shutil.copyfileobj(fh, out, 1 << 20)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _same_bytes(a: Path, b: Path, size: int) -> bool:
    try:
        if b.stat().st_size != size:
            return False
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x = fa.read(1 << 20)
                if x != fb.read(1 << 20):
                    return False
                if not x:
                    return True
    except OSError:
        return False


def sync_tree(staging: Path, site: Path) -> tuple[list[str], list[str], int]:
    """Make ``site`` hold what ``staging`` holds, writing only files whose bytes differ.

    Returns (written, removed, unchanged). Changed files arrive by a rename, so a reader of
    site/ never sees half a file."""
    written, removed, unchanged = [], [], 0
    fresh: set[str] = set()
    for dirpath, _dirnames, filenames in os.walk(staging):
        for name in filenames:
            src = Path(dirpath) / name
            rel = src.relative_to(staging).as_posix()
            fresh.add(rel)
            dst = site / rel
            if dst.is_file() and not dst.is_symlink() and _same_bytes(src, dst, src.stat().st_size):
                unchanged += 1
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_dir() and not dst.is_symlink():
                import shutil

                shutil.rmtree(dst)
            _move(src, dst)
            written.append(rel)
    if site.is_dir():
        for dirpath, dirnames, filenames in os.walk(site, topdown=False):
            for name in filenames:
                path = Path(dirpath) / name
                rel = path.relative_to(site).as_posix()
                if rel not in fresh:
                    path.unlink()
                    removed.append(rel)
            for name in dirnames:
                with contextlib.suppress(OSError):
                    (Path(dirpath) / name).rmdir()  # only when emptied
    return sorted(written), sorted(removed), unchanged


# -- Markdown render cache ---------------------------------------------------------------------


class RenderMemo:
    """Reuses Markdown conversions of pages and blog excerpts across builds.

    MkDocs has no hook to skip a page's conversion, so while a build runs ``Page.render`` and
    Material's ``Excerpt.render`` are wrapped (and restored afterwards). A conversion depends on
    the page's Markdown, its URL, the files of the site (links are resolved against them) and the
    configuration: all are in the key, so a hit gives the bytes a fresh conversion would."""

    def __init__(self, path: Path, config_key: str):
        self.path = path
        self.config_key = config_key
        self.old: dict = {}
        self.new: dict = {}
        self.hits = 0
        self.misses = 0
        self._files_keys: dict[int, str] = {}
        # The files of the build under way (excerpts resolve links against the same set).
        self.current_files = ""
        # Digest of docs/ files that are not pages (authors file, images): set by the caller.
        self.assets_key = ""
        self._site_keys: dict[int, str] = {}
        try:
            with open(path, "rb") as fh:
                data = pickle.load(fh)
            if isinstance(data, dict) and data.get("config") == config_key:
                self.old = data.get("entries") or {}
        except Exception:  # a missing, old or damaged cache is an empty one
            self.old = {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(
                {"config": self.config_key, "entries": self.new}, fh, pickle.HIGHEST_PROTOCOL
            )
        os.replace(tmp, self.path)

    def _files_key(self, files) -> str:
        key = self._files_keys.get(id(files))
        if key is None:
            h = hashlib.sha256()
            for f in sorted(files, key=lambda f: f.src_uri):
                h.update(f"{f.src_uri}\0{f.url}\n".encode())
            key = self._files_keys[id(files)] = h.hexdigest()
        return key

    def _key(self, *parts) -> str:
        raw = json.dumps([self.config_key, *parts], default=str)
        return hashlib.sha256(raw.encode()).hexdigest()

    def _get(self, key):
        value = self.new.get(key) or self.old.get(key)
        if value is not None:
            self.new[key] = value
            self.hits += 1
        else:
            self.misses += 1
        return value

    def _search_and_readtime(self) -> list:
        """Material's search indexing and read-time parse each page's HTML again: both are
        pure functions of the page, cached like the conversions."""
        memo = self
        patches = []
        with contextlib.suppress(ImportError):
            from material.plugins.search import plugin as search_plugin

            index_cls = search_plugin.SearchIndex
            add_entry = index_cls.add_entry_from_context

            def add_entry_from_context(index, page):
                key = memo._key(
                    "search",
                    page.url,
                    page.title,
                    page.content,
                    _toc_data(page.toc),
                    {k: page.meta.get(k) for k in ("title", "tags", "search")},
                )
                hit = memo._get(key)
                if hit is not None:
                    index.entries.extend(pickle.loads(hit))
                    return
                before = len(index.entries)
                add_entry(index, page)
                memo.new[key] = pickle.dumps(index.entries[before:], pickle.HIGHEST_PROTOCOL)

            patches.append((index_cls, "add_entry_from_context", add_entry, add_entry_from_context))
        with contextlib.suppress(ImportError):
            from material.plugins.blog import plugin as blog_plugin

            readtime = blog_plugin.readtime

            def cached_readtime(html, words_per_minute):
                key = memo._key("readtime", words_per_minute, html)
                hit = memo._get(key)
                if hit is not None:
                    return pickle.loads(hit)
                value = readtime(html, words_per_minute)
                memo.new[key] = pickle.dumps(value)
                return value

            patches.append((blog_plugin, "readtime", readtime, cached_readtime))
        return patches

    def _post_metadata_and_feed(self) -> list:
        """Two per-post costs of every build that do not depend on other posts: Material's blog
        reads each post's front matter with PyYAML's pure-Python loader (MkDocs itself uses the
        C one when PyYAML has it: same data, about 10x faster), and the RSS plugin converts the
        start of each post's Markdown again for its description (cached like the conversions)."""
        memo = self
        patches: list = []
        import yaml

        c_loader = getattr(yaml, "CSafeLoader", None)
        with contextlib.suppress(ImportError):
            from material.plugins.blog import structure

            if c_loader is not None and getattr(structure, "SafeLoader", None) is yaml.SafeLoader:
                patches.append((structure, "SafeLoader", yaml.SafeLoader, c_loader))
        with contextlib.suppress(ImportError):
            from mkdocs_rss_plugin.util import Util

            describe = Util.get_description_or_abstract

            def cached_describe(util, in_page, chars_count=160, abstract_delimiter=None):
                meta = in_page.meta
                if not isinstance(meta.get("rss", {}), dict):
                    return describe(util, in_page, chars_count, abstract_delimiter)
                key = memo._key(
                    "rss-description",
                    chars_count,
                    abstract_delimiter,
                    meta.get("rss"),
                    meta.get("description"),
                    in_page.content if chars_count == -1 else None,
                    in_page.markdown,
                )
                hit = memo._get(key)
                if hit is not None:
                    return hit.decode("utf-8")
                value = describe(util, in_page, chars_count, abstract_delimiter)
                if value:  # an empty one logs a warning each time: never cached
                    memo.new[key] = value.encode("utf-8")
                return value

            patches.append((Util, "get_description_or_abstract", describe, cached_describe))
        return patches

    def _blog_per_post(self) -> list:
        """Two costs per post that a cached build never needs, with the same results.

        Material's blog makes a Markdown parser for every post's excerpt up front (about 1 ms
        each): it is made only when an excerpt is converted, which a cache hit skips. And the
        blog asks ``page in posts`` for every page, comparing pages by title first (a property
        that looks in the metadata): MkDocs' own test, in a cheaper order (the file first)."""
        patches: list = []
        with contextlib.suppress(ImportError):
            from material.plugins.blog import structure

            if getattr(structure, "Markdown", None) is not None:
                patches.append((structure, "Markdown", structure.Markdown, _LazyMarkdown))
        from mkdocs.structure.pages import Page

        page_eq = Page.__eq__

        def same_page(page, other) -> bool:
            return other is page or (
                isinstance(other, page.__class__)
                and page.file == other.file
                and page.title == other.title
            )

        patches.append((Page, "__eq__", page_eq, same_page))
        return patches

    def _template_bytecode(self) -> list:
        """Compiled Jinja templates kept between builds (compiling the theme costs ~1 s)."""
        from mkdocs.theme import Theme

        get_env = Theme.get_env
        folder = self.path.parent / "jinja"

        def cached_env(theme):
            env = get_env(theme)
            if env.bytecode_cache is None:
                from jinja2 import FileSystemBytecodeCache

                folder.mkdir(parents=True, exist_ok=True)
                env.bytecode_cache = FileSystemBytecodeCache(str(folder))
            return env

        return [(Theme, "get_env", get_env, cached_env)]

    def _page_html(self) -> list:
        """The HTML of a page (or blog post) whose template sees the same things as last time.

        What a page's template can see: the page itself (URL, title, content, table of contents,
        metadata, neighbours, ancestors; a post's date, authors and categories), the navigation,
        the list of pages with their titles and metadata, the non-Markdown files of docs/ (the
        authors file, images) and the configuration. All of it is in the key, so a page is
        rendered again whenever any of it changed. A blog index page (a view) also sees the
        excerpts it lists (their content, link, date, read time, authors, categories, pin and
        draft marks) and its pagination (page, page count, the pages' links): in its key too; a
        view whose pagination cannot be read that way is always rendered."""
        import jinja2

        memo = self
        render = jinja2.Template.render

        def cached_render(template, *args, **kwargs):
            ctx = args[0] if args and isinstance(args[0], dict) else kwargs
            page = ctx.get("page") if isinstance(ctx, dict) else None
            # Only the page's own template as MkDocs renders it (fragments rendered by plugins,
            # such as a tag listing, see the same page but are not the page).
            kind = type(page).__name__ if page is not None else ""
            view = kind in _VIEWS and "posts" in ctx
            if (
                page is None
                or (kind not in ("Page", "Post") and not view)
                or len(args) > 1
                or (args and kwargs)
                or not _STANDARD_CONTEXT <= set(ctx)
                or template.name != page.meta.get("template", "main.html")
            ):
                return render(template, *args, **kwargs)
            hidden = _OPAQUE_CONTEXT
            listing = None
            if view:
                listing = _view_data(ctx.get("posts"), ctx.get("pagination"))
                if listing is None:
                    return render(template, *args, **kwargs)
                hidden = _OPAQUE_CONTEXT | {"posts", "pagination"}
            extra = {k: _plain(v) for k, v in ctx.items() if k not in hidden}
            key = memo._key(
                "html", memo._site_key(ctx), template.name, _page_data(page), extra, listing
            )
            hit = memo._get(key)
            if hit is not None:
                return hit.decode("utf-8")
            out = render(template, *args, **kwargs)
            memo.new[key] = out.encode("utf-8")
            return out

        return [(jinja2.Template, "render", render, cached_render)]

    def _site_key(self, ctx) -> str:
        nav = ctx.get("nav")
        cached = self._site_keys.get(id(nav))
        if cached is None:
            pages = []
            for f in ctx.get("pages") or []:
                page = getattr(f, "page", None)
                pages.append(
                    [
                        getattr(f, "src_uri", ""),
                        getattr(f, "url", ""),
                        getattr(page, "title", None),
                        _plain(getattr(page, "meta", None)),
                    ]
                )
            raw = json.dumps(
                [_nav_data(nav), pages, self.assets_key, str(ctx.get("base_url"))], default=str
            )
            cached = self._site_keys[id(nav)] = hashlib.sha256(raw.encode()).hexdigest()
        return cached

    @contextlib.contextmanager
    def active(self):
        from mkdocs.structure.pages import Page

        memo = self
        page_render = Page.render

        def render(page, config, files):
            memo.current_files = memo._files_key(files)
            key = memo._key(
                "page", memo.current_files, page.file.src_uri, page.file.url, page.markdown
            )
            hit = memo._get(key)
            if hit is not None:
                content, toc, title, anchors, links = pickle.loads(hit)
                page.content, page.toc, page._title_from_render = content, toc, title
                page.present_anchor_ids = anchors
                if links is not None:
                    page.links_to_anchors = {
                        f: v
                        for uri, v in links.items()
                        if (f := files.get_file_from_path(uri)) is not None
                    }
                return
            page_render(page, config, files)
            links = getattr(page, "links_to_anchors", None)
            value = (
                page.content,
                page.toc,
                page._title_from_render,
                page.present_anchor_ids,
                None if links is None else {f.src_uri: v for f, v in links.items()},
            )
            memo.new[key] = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

        patches = [(Page, "render", page_render, render)]
        excerpt_cls = None
        with contextlib.suppress(ImportError):
            from material.plugins.blog.structure import Excerpt as excerpt_cls
        if excerpt_cls is not None and "render" in vars(excerpt_cls):
            excerpt_render = excerpt_cls.render

            def render_excerpt(excerpt, page, separator):
                post = excerpt.post
                key = memo._key(
                    "excerpt",
                    memo.current_files,
                    post.file.src_uri,
                    post.url,
                    page.url,
                    separator,
                    post.title,
                    bool(post._title_from_render),
                    post.markdown,
                )
                hit = memo._get(key)
                if hit is not None:
                    excerpt.content, excerpt.more, excerpt.toc = pickle.loads(hit)
                    return
                excerpt_render(excerpt, page, separator)
                memo.new[key] = pickle.dumps(
                    (excerpt.content, excerpt.more, excerpt.toc), pickle.HIGHEST_PROTOCOL
                )

            patches.append((excerpt_cls, "render", excerpt_render, render_excerpt))
        patches += self._search_and_readtime()
        patches += self._post_metadata_and_feed()
        patches += self._blog_per_post()
        patches += self._template_bytecode()
        patches += self._page_html()
        for cls, name, _old, new in patches:
            setattr(cls, name, new)
        try:
            yield self
        finally:
            for cls, name, old, _new in patches:
                setattr(cls, name, old)


class _LazyMarkdown:
    """A Markdown parser made on first use, with the tree processors registered before that
    replayed in order (what Material's excerpts register right after making theirs)."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._registered: list = []
        self._md = None

    def _real(self):
        if self._md is None:
            from markdown import Markdown

            self._md = Markdown(**self._kwargs)
            for args, kwargs in self._registered:
                self._md.treeprocessors.register(*args, **kwargs)
        return self._md

    @property
    def treeprocessors(self):
        return _Registrations(self) if self._md is None else self._md.treeprocessors

    def __getattr__(self, name):
        return getattr(self._real(), name)


class _Registrations:
    def __init__(self, lazy: _LazyMarkdown):
        self._lazy = lazy

    def register(self, *args, **kwargs):
        self._lazy._registered.append((args, kwargs))

    def __getattr__(self, name):
        return getattr(self._lazy._real().treeprocessors, name)

    def __getitem__(self, key):
        return self._lazy._real().treeprocessors[key]


# Material's blog index pages: the blog, archive, category and author views.
_VIEWS = ("View", "Archive", "Category", "Profile")


def _view_data(posts, pager) -> list | None:
    """What a view's template shows of its excerpts and pagination; None when the pagination
    is not the blog plugin's pager over a paginate.Page (then the view is not cached)."""
    out = []
    for post in posts or []:
        whole = getattr(post, "post", post)  # an excerpt's post
        out.append(
            [
                str(whole.url),
                str(whole.title),
                post.content,
                bool(getattr(post, "more", None)),
                _plain(getattr(post, "config", None)),
                _plain(getattr(post, "authors", None)),
                [[str(c.title), str(c.url)] for c in getattr(post, "categories", None) or []],
            ]
        )
    if pager is None:
        return [out, None]
    names, cells = pager.__code__.co_freevars, pager.__closure__ or ()
    cells = dict(zip(names, [c.cell_contents for c in cells], strict=False))
    pagination = cells.get("pagination")
    needed = ("page", "page_count", "item_count", "items_per_page", "url_maker")
    if pagination is None or not all(hasattr(pagination, n) for n in needed):
        return None
    links = [pagination.url_maker(n) for n in range(1, pagination.page_count + 1)]
    return [
        out,
        [pagination.page, pagination.page_count, pagination.item_count, links],
        pagination.items_per_page,
    ]


def _toc_data(toc) -> list:
    out = []
    for item in toc or []:
        out.append([getattr(item, "title", ""), getattr(item, "url", ""), _toc_data(item.children)])
    return out


# What MkDocs' get_context() gives every page; nav, pages and config are in the site key, the
# page in the page's own data; everything else in the context (base_url, extra_css, what plugins
# add, such as the tags of a page) goes into the key as it is.
_STANDARD_CONTEXT = {"nav", "pages", "base_url", "config", "page"}
_OPAQUE_CONTEXT = {"nav", "pages", "config", "page", "build_date_utc"}


def _plain(value, depth: int = 0):
    """JSON-able data of template-visible values (Config objects are mappings; objects with a
    title and a URL are links); never an object's memory address."""
    from collections.abc import Mapping

    if depth > 6:
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v, depth + 1) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if hasattr(value, "url") and hasattr(value, "title"):
        return ["link", str(value.title), str(value.url)]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    import re

    return re.sub(r" at 0x[0-9a-f]+", "", str(value))


def _page_data(page) -> list:
    def link(p):
        return None if p is None else [str(getattr(p, "title", "")), str(getattr(p, "url", ""))]

    data = [
        type(page).__name__,
        page.url,
        page.file.src_uri,
        page.title,
        page.content,
        _toc_data(page.toc),
        _plain(page.meta),
        page.canonical_url,
        page.edit_url,
        link(getattr(page, "previous_page", None)),
        link(getattr(page, "next_page", None)),
        [link(a) for a in getattr(page, "ancestors", [])],
    ]
    for name in ("config", "authors", "categories", "excerpt"):
        if name == "excerpt":
            continue  # rendered from the same content
        if hasattr(page, name):
            data.append([name, _plain(getattr(page, name))])
    return data


def _nav_data(nav) -> list:
    def item(i):
        return [
            type(i).__name__,
            str(getattr(i, "title", "")),
            str(getattr(i, "url", "") or ""),
            [item(c) for c in (getattr(i, "children", None) or [])],
        ]

    return [item(i) for i in (getattr(nav, "items", None) or [])]
