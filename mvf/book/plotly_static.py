"""A Sphinx extension: a page of the built book that holds an interactive figure loads plotly.js, from ``_static``.

The chapters' interactive figures (:func:`mvf.plots.plotly_html`) leave plotly.js out of the notebooks (4.6 MB per
figure otherwise); this copies the plotly.js of the installed plotly package, the one the figures were made with, so
they draw without a network. It is deferred (the page's text and MathJax do not wait for it) and added only to the
pages that draw a figure.
"""

from pathlib import Path

FILE = "plotly.min.js"
MARK = "plotly-graph-div"


def _on_pages_with_figures(app, pagename, templatename, context, doctree) -> None:  # noqa: ARG001 - Sphinx's signature
    if doctree is not None and any(MARK in node.astext() for node in doctree.findall(lambda node: node.tagname == "raw")):
        # Without it plotly.js configures a global MathJax of its own as it loads.
        app.add_js_file(None, body="window.PlotlyConfig = {MathJaxConfig: 'local'};")
        app.add_js_file(FILE, loading_method="defer")


def _write(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        from plotly.offline import get_plotlyjs

        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / FILE).write_text(get_plotlyjs(), encoding="utf-8")


def setup(app) -> dict:
    app.connect("html-page-context", _on_pages_with_figures)
    app.connect("build-finished", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
