"""The import contracts of ``pyproject.toml`` (``make lint`` runs them): the client and the
command line's client side import no server part. They hold for the real tree, and they
fail for a tree with one deliberately wrong import, so a wrong import fails the build
rather than waiting for a review."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: the packages the contracts name, each made an empty module in the stand-in tree
PACKAGES = (
    "authority", "plane", "services", "store", "audit", "directory", "web", "cli",
    "cli/client_side", "cli/render", "cli/operator", "client",
)  # fmt: skip


def contracts() -> str:
    """The contracts exactly as ``pyproject.toml`` declares them, as a config file."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[importlinter]", f"root_package = {declared['root_package']}", ""]
    for number, contract in enumerate(declared["contracts"]):
        lines += [f"[importlinter:contract:{number}]", f"name = {contract['name']}"]
        lines += [f"type = {contract['type']}"]
        for key in ("source_modules", "forbidden_modules"):
            lines += [f"{key} =", *(f"    {module}" for module in contract[key])]
        lines.append("")
    return "\n".join(lines)


def lint(tree: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(config)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "contracts.ini"
    path.write_text(contracts())
    return path


def test_the_real_tree_keeps_every_contract(config: Path) -> None:
    result = lint(ROOT / "src", config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong"),
    [
        ("client/wrong.py", "import bastion.store"),
        ("client/wrong.py", "from bastion.authority import x"),
        ("cli/client_side/wrong.py", "from bastion.cli.operator import y"),
        ("cli/render/wrong.py", "import bastion.plane"),
    ],
)
def test_one_wrong_import_breaks_a_contract(
    tmp_path: Path, config: Path, module: str, wrong: str
) -> None:
    tree = tmp_path / "tree"
    for package in ("", *PACKAGES):
        folder = tree / "bastion" / package
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    for name in ("demo", "seed"):
        (tree / "bastion" / f"{name}.py").write_text("")
    (tree / "bastion" / "authority" / "x.py").write_text("")
    (tree / "bastion" / "cli" / "operator" / "y.py").write_text("")
    clean = lint(tree, config)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    (tree / "bastion" / module).write_text(wrong + "\n")
    broken = lint(tree, config)
    assert broken.returncode != 0, broken.stdout
    assert "BROKEN" in broken.stdout
