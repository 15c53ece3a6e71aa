"""Build ``.whl/wheels.tar.xz``: the wheels bench/gpu_check.sh installs on a GPU machine that has no network.

    python scripts/gpu_wheels.py        # then carry .whl (ignored by git) to the machine

Downloads ``scripts/gpu_wheels.txt`` for CPython 3.12 on manylinux x86_64
without dependencies, stores each wheel uncompressed (same files, so the
wheels' RECORD hashes hold) and packs them in one xz stream: 26 MB instead of
56 MB as downloaded, inside the device tool's 64 MiB transfer limit.
"""

import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]  # fmt: skip


def main() -> None:
    wanted = [line.strip() for line in (ROOT / "scripts" / "gpu_wheels.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]  # fmt: skip
    out = ROOT / ".whl"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as downloaded, tempfile.TemporaryDirectory() as stored:
        platforms = [argument for name in PLATFORMS for argument in ("--platform", name)]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", downloaded, *wanted],
                       check=True)  # fmt: skip
        for wheel in sorted(Path(downloaded).glob("*.whl")):
            with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(Path(stored) / wheel.name, "w") as target:
                for item in source.infolist():
                    target.writestr(item, source.read(item), compress_type=zipfile.ZIP_STORED)
        with tarfile.open(out / "wheels.tar.xz", "w:xz") as archive:
            for wheel in sorted(Path(stored).glob("*.whl")):
                archive.add(wheel, arcname=wheel.name)
    print(f"{out / 'wheels.tar.xz'}: {len(wanted)} wheels, {(out / 'wheels.tar.xz').stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
