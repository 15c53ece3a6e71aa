"""What a fresh install of mvf holds, against the floors pyproject.toml declares (or, with ``--floors``, those floors
as pins for the installer).

``--mode lowest`` fails when a dependency was installed above its declared
floor: uv's lowest-direct resolution could not honour the floor together with
the others, so the floor claims more than was tested and must be raised.
"""

import argparse
import sys
import tomllib
from importlib.metadata import version

from packaging.requirements import Requirement
from packaging.version import Version


def floors(pyproject: str) -> dict[str, Version | None]:
    """``{distribution: declared lowest version}`` of mvf's runtime dependencies."""
    with open(pyproject, "rb") as file:
        dependencies = tomllib.load(file)["project"]["dependencies"]
    found = {}
    for line in dependencies:
        requirement = Requirement(line)
        lows = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        found[requirement.name] = max(lows) if lows else None
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pyproject")
    parser.add_argument("--mode", choices=["lowest", "newest"])
    parser.add_argument("--floors", help="only write name==floor of each declared dependency to this file, and stop")
    parser.add_argument("--pins", help="also write name==installed of each declared dependency to this file")
    args = parser.parse_args()
    if args.floors:
        with open(args.floors, "w") as file:
            file.writelines(f"{name}=={floor}\n" for name, floor in floors(args.pyproject).items() if floor)
        return 0
    raised = []
    print(f"{'distribution':<18} {'declared':>10} {'installed':>10}")
    for name, floor in floors(args.pyproject).items():
        installed = Version(version(name))
        print(f"{name:<18} {'>=' + str(floor) if floor else 'any':>10} {str(installed):>10}")
        if args.mode == "lowest" and floor is not None and installed != floor:
            raised.append(f"{name}: declared >={floor}, but the lowest installable with the others is {installed}")
    if args.pins:
        with open(args.pins, "w") as file:
            file.writelines(f"{name}=={version(name)}\n" for name in floors(args.pyproject))
    if raised:
        print("Raise these floors in pyproject.toml to what installs, then run again:", *raised, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
