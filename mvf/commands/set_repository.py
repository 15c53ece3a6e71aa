"""Point the book at another repository, in every place that names it, at once.

    python -m mvf.commands.set_repository https://github.com/<owner>/<name>

The repository is named in ``mvf/book/colab.py`` (``REPOSITORY``, which the
setup cell installs from), in ``_config.yml`` (``repository.url``, from which
Jupyter Book makes the Colab launch buttons and the repository button) and in
every chapter's setup cell (text, since a chapter cannot import mvf before
installing it). ``tests/test_book.py`` and ``tests/test_packaging.py`` fail
when they disagree; this command changes them together. Run ``make
notebooks`` afterwards to regenerate the pages from their sources.
"""

import argparse
import re
from pathlib import Path

from mvf.book import colab

ROOT = Path(__file__).resolve().parents[2]
GITHUB = re.compile(r"https://github\.com/[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")


def places(root: Path) -> list[Path]:
    """The files that name the repository: the setup cell's module, the book's configuration, every page source."""
    return [root / "mvf" / "book" / "colab.py", root / "_config.yml", *sorted((root / "book").glob("**/*.md"))]


def set_repository(url: str, root: Path = ROOT, current: str = colab.REPOSITORY) -> list[Path]:
    """Replace ``current`` by ``url`` in every place; returns the files changed. ``ValueError`` for a URL that is not a GitHub repository's."""
    url = url.rstrip("/")
    if not GITHUB.fullmatch(url):
        raise ValueError(f"{url!r} is not a GitHub repository URL (https://github.com/<owner>/<name>): Colab's launch "
                         "buttons and `pip install git+…` need one.")  # fmt: skip
    changed = []
    for path in places(root):
        if path.is_file() and current in (text := path.read_text()):
            path.write_text(text.replace(current, url))
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mvf.commands.set_repository", description=__doc__.split("\n")[0])
    parser.add_argument("url", help="https://github.com/<owner>/<name>")
    args = parser.parse_args(argv)
    for path in set_repository(args.url):
        print(f"updated {path.relative_to(ROOT)}")
    print("now run `make notebooks` to regenerate the pages")


if __name__ == "__main__":
    main()
