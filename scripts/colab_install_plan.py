"""What `pip install mvf` would change on Colab, without a Colab: pip's own dry run in a virtual environment that holds
Colab's packages at Colab's versions (as metadata only: pip decides from the installed distributions' names and
versions, not their files).

    python scripts/colab_install_plan.py [--freeze scripts/colab-gpu-freeze.txt] [--python python3.13]

Prints each package the install would add and each of Colab's it would replace; exits 1 when it would replace one.
Needs PyPI.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from mvf.models import profile, upgrade_advice  # the advice the chapters print, checked here

REPO = Path(__file__).resolve().parents[1]

# Caps that others of Colab's packages put on a package (diffusers 0.39 and gradio_client 2.6 need huggingface_hub < 2).
CAPS = {"huggingface-hub": "2"}


def colab_versions(freeze: Path) -> dict[str, str]:
    """``{canonical name: version}`` from a ``name==version`` freeze file (comments skipped)."""
    pairs = (line.split("==") for line in freeze.read_text().splitlines() if "==" in line and not line.startswith("#"))
    return {canonicalize_name(name): version for name, version in pairs}


def fake_installed(site_packages: Path, versions: dict[str, str]) -> None:
    """A ``.dist-info`` per package, with the metadata pip reads to decide whether an installed version will do."""
    for name, version in versions.items():
        if name in {"pip", "setuptools", "wheel"}:
            continue
        info = site_packages / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "INSTALLER").write_text("pip\n")
        (info / "RECORD").write_text("")


def plan(python: str, versions: dict[str, str], requirements: list[str] | None = None) -> list[tuple[str, str]]:
    """``[(name, version)]`` that ``pip install -U <requirements>`` (default: ``"mvf @ file://<repo>"``) would install
    beside ``versions``."""
    with tempfile.TemporaryDirectory() as folder:
        env = Path(folder) / "colab"
        if subprocess.run([python, "-m", "venv", str(env)], capture_output=True).returncode:
            raise SystemExit(f"{python} cannot make a virtual environment; pass --python (COLAB_PYTHON= for make) "
                             "the path of a Python 3.13, Colab's.")  # fmt: skip
        purelib = subprocess.run([env / "bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
        fake_installed(Path(purelib), versions)
        report = Path(folder) / "report.json"
        command = [env / "bin/python", "-m", "pip", "install", "--dry-run", "--quiet", "--report", report,
                   *(["-U", *requirements] if requirements else [f"mvf @ file://{REPO}"])]
        subprocess.run(command, check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        installs = json.loads(report.read_text())["install"]
    return [(canonicalize_name(item["metadata"]["name"]), item["metadata"]["version"]) for item in installs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freeze", type=Path, default=REPO / "scripts/colab-gpu-freeze.txt")
    parser.add_argument("--python", default="python3.13", help="Colab's Python (3.13 since 2026-08)")
    args = parser.parse_args()
    versions = colab_versions(args.freeze)
    replaced, added = [], []
    for name, version in plan(args.python, versions):
        if name in versions:
            replaced.append(f"{name} {versions[name]} -> {version}")
        elif name != "mvf":
            added.append(f"{name} {version}")
    print(f"Installing mvf beside Colab's {len(versions)} packages ({args.freeze.name}):")
    print(f"  adds {len(added)}: {', '.join(added) or 'nothing'}")
    print(f"  replaces {len(replaced)} of Colab's: {', '.join(replaced) or 'none'}")
    # The command the chapters advise where Gemma 3 needs a newer transformers: it may replace transformers (and what
    # transformers itself pins), never a package another of Colab's packages caps (huggingface_hub < 2).
    advice = [requirement.strip("'") for requirement in upgrade_advice(profile("gemma-3-270m").needs_transformers)]
    after = {name: version for name, version in plan(args.python, versions, advice) if name in versions}
    upgraded = [f"{name} {versions[name]} -> {version}" for name, version in after.items()]
    capped = [f"{name} {after[name]} (needs < {cap})" for name, cap in CAPS.items()
              if name in after and Version(after[name]) >= Version(cap)]  # fmt: skip
    print(f"The advice `pip install -U {' '.join(advice)}` replaces: {', '.join(upgraded) or 'none'}")
    print(f"  Colab's caps ({', '.join(f'{name} < {cap}' for name, cap in CAPS.items())}): "
          f"{'broken by ' + ', '.join(capped) if capped else 'kept'}")
    return 1 if replaced or capped or "transformers" not in after else 0


if __name__ == "__main__":
    sys.exit(main())
