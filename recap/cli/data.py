"""`recap data ...`: datasets made by runs (Blender renders): join the shards of one set."""

from pathlib import Path
from typing import Annotated

import typer

from recap.cli.output import print_json

app = typer.Typer(
    help="Datasets made by runs: merge the shards of a Blender set.", no_args_is_help=True
)


@app.command("merge")
def merge_cmd(
    shards: Annotated[
        list[str], typer.Argument(help="The shard runs (ids, or unique prefixes) or their folders.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="The folder to write the merged set to.")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a non-empty --out folder.")
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
):
    """Join shards (-p shard=k/n runs) into one set identical to an unsharded render."""
    from recap.blender.merge import merge
    from recap.lab.datasets import shard_folders

    result = merge(shard_folders(shards), out, force=force)
    if json_:
        print_json(result)
    else:
        typer.echo(
            f"merged {result['shards']} shards: {result['images']} images in {result['out']} "
            f"(sha256 {result['sha256']})"
        )
