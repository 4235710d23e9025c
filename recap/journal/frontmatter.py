"""YAML front matter: split, parse and write ``---`` headed Markdown documents."""

from __future__ import annotations

import re

from recap.errors import InvalidInput

_FM = re.compile(
    r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*\r?$\n?", re.S | re.M
)


def _loader():
    """yaml's SafeLoader, except that a timestamp that is no real date (``2021-02-30``) stays a
    string for the caller to report, instead of raising ValueError from inside yaml."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_yaml_timestamp(self, node):
            try:
                return super().construct_yaml_timestamp(node)
            except ValueError:
                return self.construct_scalar(node)

    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_timestamp)
    return Loader


def split(text: str, source: str = "<text>") -> tuple[dict, str]:
    """(metadata, body). A document without front matter has empty metadata."""
    import yaml

    m = _FM.match(text)
    if not m:
        if text.lstrip("\ufeff").startswith("---\n"):
            raise InvalidInput(f"{source}: front matter is not closed with '---'")
        return {}, text
    try:
        meta = yaml.load(m.group(1), Loader=_loader()) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 2})" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"{source}: malformed front matter{line}: {problem}") from None
    if not isinstance(meta, dict):
        raise InvalidInput(f"{source}: front matter is not a mapping of keys to values")
    return meta, text[m.end() :]


def join(meta: dict, body: str) -> str:
    import yaml

    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{head}---\n\n{body.lstrip(chr(10))}"
