"""Ships the repository's ``experiments/`` folders inside the wheel as ``recap/_experiments``.

``recap init`` copies them into a new log. An editable install (``pip install -e .``) reads them
from the source tree instead (``recap.logroot.shipped_experiments``), so folders added to
``experiments/`` later are picked up by both without listing them anywhere.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", "runs")


class BuildPy(build_py):
    def run(self):
        super().run()
        src = HERE / "experiments"
        if src.is_dir() and not self.editable_mode:
            dest = Path(self.build_lib) / "recap" / "_experiments"
            shutil.rmtree(dest, ignore_errors=True)
            for folder in sorted(src.iterdir()):
                if (folder / "experiment.toml").is_file():
                    shutil.copytree(folder, dest / folder.name, ignore=SKIP)
                elif folder.name.endswith(("-family.toml", "-family.md")):  # shared definitions
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(folder, dest / folder.name)


setup(cmdclass={"build_py": BuildPy})
