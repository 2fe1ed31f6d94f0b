"""Stand-ins for tools that cannot run on this project's machines (see each folder's README)."""

from __future__ import annotations

import shutil
from pathlib import Path


def install_standin(script: Path, names: list[str], bin_dir: Path) -> Path:
    """Copy a stand-in script into bin_dir under each command name, executable, and return bin_dir.

    Built at test time rather than kept as links or executable files in the repository, so that
    a checkout that loses file modes or symbolic links still tests the same thing.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(script, bin_dir / name)
        (bin_dir / name).chmod(0o755)
    return bin_dir
