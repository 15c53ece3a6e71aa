"""The rendered book as a reader sees it: every page opened in headless Chromium.

Reads the book that ``jupyter-book`` built from the chapters executed once (the
``built_book`` fixture; nothing is executed again), serves it on localhost, and for
the index and every chapter checks: images load, no error output cells,
internal links resolve (files and anchors), no ipywidget is left blank,
figures are not shrunk past legibility, no visible table has more than 15
rows, no code or output box is cut off, and MathJax has typeset the equations. A full-page screenshot of each
page lands in ``_build/screenshots/`` and the build's log in ``_build/build.log``
(each chapter's execution time is in ``_build/executed/timings.json``).
Chromium is Debian's ``chromium`` package, which ``make test`` installs.
"""

import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = shutil.which("chromium")
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [chapter["file"] for chapter in TOC["chapters"]]
# sphinx-thebe's script is included twice by the Jupyter Book 1 theme and redeclares a constant; it is harmless
# to readers (launch buttons still work) and not ours to fix, so it is the one page error tolerated.
KNOWN_THEME_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)
LIVE_WIDGET = re.compile(r"^widgets\.\w+\(", re.MULTILINE)  # a chapter cell that shows an mvf.widgets explorer
# A path of the machine that built the book, or a pathlib repr: machinery, not the book.
MACHINE_PATH = re.compile(r"PosixPath|/tmp/|/root/|/home/|/work/|site-packages")
PHONE = {"width": 390, "height": 844}
WORDS_PER_MINUTE = 200
FIGURE_MINUTES = 0.25  # a figure read with its sentence
READING_TIMES = ROOT / "_build" / "reading_times.json"
# Tables wider than the page must sit in a frame that scrolls (a visible scroll bar), never run past the window.
CLIPPED_TABLES = """() => [...document.querySelectorAll('.bd-article table')].filter(t => t.checkVisibility())
  .filter(t => t.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(t => { for (let e = t.parentElement; e; e = e.parentElement) {
      const x = getComputedStyle(e).overflowX;
      if ((x === 'auto' || x === 'scroll') && e.scrollWidth > e.clientWidth) return false; }
    return true; })
  .map(t => t.innerText.slice(0, 60))"""
# A figure (an image or a plotly figure in a cell's output) is followed by a sentence: the next thing on the page is
# prose, or a cell whose output is Markdown text (mvf.book.numbers.say).
UNREAD_FIGURES = """() => [...document.querySelectorAll('.bd-article div.cell')]
  .filter(c => c.querySelector('div.cell_output img, div.cell_output .plotly-graph-div'))
  .filter(c => { const n = c.nextElementSibling;
      return !(n && (n.tagName === 'P' || n.tagName === 'BLOCKQUOTE' || n.tagName === 'UL'
               || (n.matches('div.cell') && n.querySelector('div.cell_output p')))); })
  .map(c => (c.querySelector('.cell_input') ? c.querySelector('.cell_input').innerText : '(hidden input)').slice(0, 60))"""


@pytest.fixture(scope="module")
def site(built_book):
    assert built_book["returncode"] == 0, f"the book does not build ({built_book['path']}):\n{built_book['log'][-8000:]}"
    # Every chapter was executed once, by the fixture; Jupyter Book only renders what it finds in its cache.
    assert "Executing notebook" not in built_book["log"], "Jupyter Book executed a chapter a second time"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Debian's chromium is not installed: `make test` installs it (apt-get install chromium)."
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _internal_links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    return sorted({href for href in hrefs if href.startswith(base) and not href.startswith(base + "_sources/")})


def _broken(page, links: list[str], base: str) -> list[str]:
    broken = []
    for link in links:
        path, anchor = urldefrag(link)
        target = HTML / urlparse(path).path.lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(link)
        elif anchor and target.suffix == ".html" and f'id="{anchor}"' not in target.read_text(errors="replace"):
            broken.append(link)
    return broken


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_for_a_reader(site, browser, name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)) if str(error) not in KNOWN_THEME_ERRORS else None)
    url = urljoin(site, f"{name}.html")
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, f"{url} did not load"

    missing = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert not missing, f"{name}: images that do not load: {missing}"
    # MathJax (vendored, no CDN) has typeset every equation: no TeX delimiters left in the prose.
    if page.locator("script[src*='mathjax']").count():  # Sphinx loads MathJax on the pages that hold an equation
        page.wait_for_function("() => window.MathJax?.version", timeout=30_000)  # deferred, after the page's scripts
        page.evaluate("() => window.MathJax.startup.promise")
    prose = page.evaluate(
        "() => { const main = document.querySelector('main').cloneNode(true);"
        " main.querySelectorAll('pre, code, .cell_output').forEach(e => e.remove()); return main.innerText; }"
    )
    assert "\\(" not in prose and "\\[" not in prose, f"{name}: equations left as TeX source (MathJax did not run)"
    failed = page.locator("div.cell_output .traceback, div.cell_output .output.error").count()
    assert failed == 0, f"{name}: {failed} error output cells"
    assert not _broken(page, _internal_links(page, site), site), f"{name}: broken internal links"
    # A widget needs a kernel: in the static book it would be a blank area. Interactive figures are plotly's.
    widgets = page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
    assert widgets == 0, f"{name}: {widgets} ipywidgets rendered (blank without a kernel): tag their cells remove-output"
    # A live widget is an extra for readers with a kernel: its page also draws an interactive figure that needs none.
    source = ROOT / "book" / "myst" / f"{Path(name).name}.md"
    if source.exists() and LIVE_WIDGET.search(source.read_text()):
        drawn = page.locator(".plotly-graph-div .main-svg").count()
        assert drawn >= 1, f"{name}: a live-notebook widget and no plotly figure for the static page"
    # Each titled plotly slider redraws without a kernel: its last step shows its own title (plotly.js 3 drops a
    # title given as a bare string in a step's layout update).
    for figure in page.locator(".plotly-graph-div:has(.slider-rail-touch-rect):has(.gtitle)").all():
        figure.scroll_into_view_if_needed()
        title = figure.locator(".gtitle").first.text_content()
        rail = figure.locator(".slider-rail-touch-rect").first.bounding_box()
        page.mouse.click(rail["x"] + rail["width"] - 3, rail["y"] + rail["height"] / 2)
        page.wait_for_timeout(500)
        titles = figure.locator(".gtitle").all_text_contents()
        assert titles and titles[0] and titles[0] != title, f"{name}: a slider step lost or kept its figure's title"
    # Figures for the page: an image shrunk by more than 150 dpi / 92 dpi puts mvf.plots' 10 pt text below 80 % of the
    # body text's size (a figure wider than plots.PAGE_WIDTH_IN, or drawn outside mvf.plots' style).
    shrunk = page.evaluate(
        "() => [...document.querySelectorAll('.bd-article div.cell_output img')].filter(i => i.checkVisibility())"
        ".filter(i => i.naturalWidth > 1.63 * i.clientWidth).map(i => [i.naturalWidth, i.clientWidth])"
    )
    assert not shrunk, f"{name}: figures shrunk so far that their text is too small to read (natural, shown): {shrunk}"
    # Walls of numbers: a visible table has at most 15 rows (longer ones are folded away or drawn).
    walls = page.evaluate(
        "() => [...document.querySelectorAll('.bd-article table')].filter(t => t.checkVisibility())"
        ".map(t => t.querySelectorAll('tbody tr').length).filter(n => n > 15)"
    )
    assert not walls, f"{name}: visible tables of {walls} rows (more than 15)"
    assert not errors, f"{name}: JavaScript errors: {errors}"
    # Every line of code and of printed output is on the page: none runs past its box's right edge.
    cut = page.evaluate(
        "() => [...document.querySelectorAll('.bd-article pre')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText.split('\\n')[0].slice(0, 60))"
    )
    assert not cut, f"{name}: {len(cut)} code or output boxes cut off at the right, starting {cut[:3]}"
    # The glued numbers are pasted: a key myst-nb could not find would leave its role's text.
    assert "{glue:" not in prose, f"{name}: a glued number was not pasted"
    if name == "book/intro":  # the first page sets the paper's findings beside the book's, pasted from the chapters
        findings = page.locator("table", has_text="The paper’s finding")
        assert findings.count() == 1 and findings.locator("tbody tr").count() >= 5, "the first page's findings table"
        assert findings.locator("span.pasted-text").count() >= 40, "the findings table's numbers are not pasted"
        header = findings.locator("thead").inner_text()
        assert "SmolLM2" in header and "Gemma 3 270M" in header, "a column per real model"
        verdicts = findings.locator("strong").all_inner_texts()
        assert len(verdicts) >= 7 and all(v.split(" ")[0] in ("replicates", "partly", "does", "not") for v in verdicts), verdicts

    text = page.evaluate("() => document.querySelector('main').innerText")
    paths = sorted(set(MACHINE_PATH.findall(text)))
    assert not paths, f"{name}: paths of the machine on the page: {paths}"
    unread = page.evaluate(UNREAD_FIGURES)
    assert not unread, f"{name}: figures with no sentence after them saying what to see: {unread}"
    clipped = page.evaluate(CLIPPED_TABLES)
    assert not clipped, f"{name}: tables running past the window at 1280 px: {clipped}"
    figures = page.locator("div.cell_output img, div.cell_output .plotly-graph-div").count()
    minutes = len(text.split()) / WORDS_PER_MINUTE + FIGURE_MINUTES * figures
    times = json.loads(READING_TIMES.read_text()) if READING_TIMES.exists() else {}
    READING_TIMES.write_text(json.dumps(times | {Path(name).name: round(minutes, 1)}, indent=1))
    print(f"{name}: about {minutes:.0f} min to read ({len(text.split())} words, {figures} figures)")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{Path(name).name}.png", full_page=True)
    page.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_reads_on_a_phone(site, browser, name):
    page = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page.goto(urljoin(site, f"{name}.html"), wait_until="networkidle")
    clipped = page.evaluate(CLIPPED_TABLES)
    assert not clipped, f"{name}: tables running past a phone's window (390 px), with no frame to scroll: {clipped}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{Path(name).name}-phone.png", full_page=True)
    page.close()


def test_book_metadata_for_readers():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["title"] and config["author"] and config["repository"]["url"].startswith("https://github.com/")
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_the_book_reads_in_two_hours_and_discovery_in_twenty_minutes():
    """From the reading times the page tests above wrote (prose, code and figures a reader sees unfolded)."""
    times = json.loads(READING_TIMES.read_text()) if READING_TIMES.exists() else {}
    missing = [Path(name).name for name in PAGES if Path(name).name not in times]
    assert not missing, f"no reading time for {missing}: run the page tests of this file first"
    assert sum(times.values()) <= 120, f"the book takes {sum(times.values()):.0f} min to read (at most 120): {times}"
    assert times["discovery"] <= 20, f"discovery takes {times['discovery']:.0f} min to read (at most 20)"
