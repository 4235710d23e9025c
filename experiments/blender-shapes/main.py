"""blender-shapes: see README.md. The work is shared by both Blender families: recap.blender."""


def run(ctx):
    from recap.blender.dataset import run_dataset

    return run_dataset(ctx, "shapes")
