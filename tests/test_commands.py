"""The commands the book and the error messages print run from the installed package, from any folder."""

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import mvf.commands

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(module.name for module in pkgutil.iter_modules(mvf.commands.__path__))


def test_every_command_answers_help_from_outside_the_repository(tmp_path):
    script = (
        "import sys, importlib\n"
        f"for name in {COMMANDS!r}:\n"
        "    sys.argv = [f'python -m mvf.commands.{name}', '--help']\n"
        "    try:\n"
        "        importlib.import_module(f'mvf.commands.{name}').main()\n"
        "    except SystemExit as done:\n"
        "        assert done.code == 0, name\n"
        "    else:\n"
        "        raise AssertionError(f'{name} ran instead of printing its help')\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.count("usage:") == len(COMMANDS) >= 6


def test_nothing_printed_points_at_a_script_outside_the_package():
    """A Colab reader has the package, not the repository's scripts/ folder."""
    package = Path(mvf.__file__).parent  # the installed copy, when the tests run against one (make lowest)
    pages = [*package.rglob("*.py"), *(ROOT / "book" / "myst").glob("*.md"), ROOT / "book" / "intro.md"]
    stale = {str(p): hits for p in pages if (hits := re.findall(r"python (?:\S*/)?scripts/\S+", p.read_text()))}
    assert not stale, stale
    printed = set(re.findall(r"python -m (mvf\.commands\.\w+)", "".join(p.read_text() for p in pages)))
    assert printed and printed <= {f"mvf.commands.{name}" for name in COMMANDS}, printed
