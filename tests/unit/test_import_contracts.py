"""The import contracts of ``pyproject.toml`` (``make lint`` runs them): the server's layers
import only downwards, sibling packages never import each other both ways, the domain knows
no HTTP framework, and the client and the command line's client side import no server part.
They hold for the real tree, and each fails for a copy of it with one deliberately wrong
import, so a wrong import fails the build rather than waiting for a review."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter with the project's own contracts, over the package found in ``tree``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong", "contract"),
    [
        ("client/wrong.py", "import bastion.store", "The client imports no other part"),
        ("client/wrong.py", "from bastion.core import errors", "The client imports no other"),
        ("cli/render/wrong.py", "import bastion.plane", "client side imports no server part"),
        ("cli/client_side/wrong.py", "import bastion.cli.operator", "client side imports no"),
        ("core/wrong.py", "import bastion.store.engine", "layers import only downwards"),
        ("directory/wrong.py", "import bastion.authority.signin", "layers import only"),
        ("plane/wrong.py", "import bastion.http.endpoint_support", "layers import only"),
        ("authority/wrong.py", "import starlette.requests", "know no HTTP framework"),
        ("server/wrong.py", "import bastion.cli.main", "layers import only downwards"),
        ("client/signin/wrong.py", "import bastion.client.connection", "No import cycle"),
    ],
)
def test_one_wrong_import_breaks_a_contract(
    tmp_path: Path, module: str, wrong: str, contract: str
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(
        ROOT / "src" / "bastion",
        tree / "bastion",
        ignore=shutil.ignore_patterns("__pycache__", "templates", "static", "migrations"),
    )
    (tree / "bastion" / module).write_text(wrong + "\n")
    broken = lint(tree)
    assert broken.returncode != 0, broken.stdout
    assert f"{contract}" in broken.stdout.split("Broken contracts")[-1], broken.stdout
