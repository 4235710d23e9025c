"""manifest.sync writes only inside docs/, however its folders are checked (one lstat each)."""

from __future__ import annotations

import pytest

from recap.errors import InvalidInput
from recap.site.manifest import sync


def test_sync_writes_nested_files_and_refuses_a_symlinked_folder(tmp_path):
    docs = tmp_path / "docs"
    res = sync(docs, {"blog/posts/a/a.md": b"A\n", "blog/posts/b/b.md": b"B\n", "x.md": b"X\n"})
    assert sorted(res.written) == ["blog/posts/a/a.md", "blog/posts/b/b.md", "x.md"]
    assert (docs / "blog/posts/b/b.md").read_bytes() == b"B\n"

    outside = tmp_path / "outside"
    outside.mkdir()
    (docs / "experiments").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput, match="outside"):
        sync(docs, {"experiments/runs/r.md": b"R\n", "x.md": b"X\n"})
    assert list(outside.rglob("*")) == []
    # A symlinked file is refused the same way.
    (docs / "y.md").symlink_to(outside / "y.md")
    with pytest.raises(InvalidInput, match="outside"):
        sync(docs, {"y.md": b"Y\n"})
    assert not (outside / "y.md").exists()
