"""Join shards of one dataset into the set an unsharded render makes (``recap data merge``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recap.errors import InvalidInput, NotFound


def read_shard(folder: Path) -> dict:
    path = Path(folder) / "dataset.json"
    if not path.is_file():
        raise NotFound(f"{folder}: no dataset.json (not a Blender dataset run)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON: {exc}") from None
    doc["folder"] = Path(folder)
    return doc


def merge(folders: list[Path], out: Path, force: bool = False) -> dict:
    """Merge shard folders into ``out``: images copied, coco.json / manifest.csv / contact.png /
    dataset.json written. The shards must share params and seed, be disjoint and cover every
    index. Returns {"out", "images", "shards", "sha256"}."""
    from recap.blender.dataset import image_name, write_set

    if not folders:
        raise InvalidInput("give the shards to merge (run ids or folders)")
    shards = [read_shard(f) for f in folders]
    first = shards[0]
    for s in shards[1:]:
        if s["params"] != first["params"] or s["seed"] != first["seed"]:
            raise InvalidInput(
                f"{s['folder']}: params/seed {s['params']}, {s['seed']} differ from "
                f"{first['folder']}: {first['params']}, {first['seed']}"
            )
    seen: dict[int, Path] = {}
    records = []
    for s in shards:
        for rec in s["records"]:
            if rec["index"] in seen:
                raise InvalidInput(
                    f"image {rec['index']} is in two shards ({seen[rec['index']]}, {s['folder']})"
                )
            seen[rec["index"]] = s["folder"]
            records.append(rec)
    n = int(first["params"]["n_images"])
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InvalidInput(
            f"the shards miss {len(missing)} of {n} images "
            f"(indices {', '.join(map(str, missing[:5]))}{more})"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise InvalidInput(f"{out} is not empty (use --force to replace it)")
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    for rec in records:
        shutil.copyfile(seen[rec["index"]] / image_name(rec["index"]), out / rec["file"])
    extra = {
        "shard": f"merged from {len(shards)}",
        "bpy": first.get("bpy"),
        "cycles_device": first.get("cycles_device"),
    }
    doc = write_set(out, first["params"], first["seed"], records, extra)
    return {"out": str(out), "images": len(records), "shards": len(shards), "sha256": doc["sha256"]}
