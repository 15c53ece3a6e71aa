"""Does plain papermill hang on an explorer? The book's explorers against ``widgets.interactive``, in the same run.

    python bench/papermill_widgets.py [--runs 10] [--timeout 60]

A two-cell notebook builds the definitions chapter's explorer (the
circle-plus-line sliders) and is executed ``--runs`` times by plain papermill
(its own command, no cell timeout, as a reader runs it), once built as
``mvf.widgets`` builds it (an ``Image`` widget) and once as the reference, the
same drawing through ``ipywidgets.interactive`` (an ``Output`` widget). A run
that has not finished after ``--timeout`` seconds is counted as hung and killed
(its kernel is idle by then: a normal run takes seconds). Prints hung runs and
the median wall time of each way.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

SETUP = "import matplotlib.pyplot as plt\nfrom mvf import widgets"
OURS = "widgets.reducibility_explorer(n=512)"
# The same drawing, the way mvf.widgets built it before: ipywidgets.interactive, whose output goes to an Output widget.
REFERENCE = """import ipywidgets

def draw(noise, weight, radius):
    import numpy as np
    from mvf import plots, synthetic
    points = synthetic.circle_with_lines(512, np.random.default_rng(0), weight=weight, noise=noise, radius=radius)
    figure, axes = plots.panels(3, row_height=2.6, columns=3)
    plots.reducibility_panels(points, tuple(axes), title="circle + line")
    plt.show()

ipywidgets.interactive(draw, noise=(0.0, 0.5, 0.01), weight=(0.0, 1.0, 0.05), radius=(0.2, 3.0, 0.1))"""


def notebook(cell: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SETUP), nbformat.v4.new_code_cell(cell)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def runs(cell: str, count: int, timeout: float, folder: Path) -> tuple[int, list[float]]:
    source = folder / "explorer.ipynb"
    nbformat.write(notebook(cell), source)
    papermill = Path(sys.executable).with_name("papermill")
    hung, seconds = 0, []
    for _ in range(count):
        started = time.perf_counter()
        try:
            subprocess.run([str(papermill), "--no-progress-bar", str(source), str(folder / "out.ipynb")], check=True,
                           capture_output=True, timeout=timeout)
            seconds.append(time.perf_counter() - started)
        except subprocess.TimeoutExpired:
            hung += 1
    return hung, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, cell in (("mvf.widgets (Image)", OURS), ("reference: ipywidgets.interactive (Output)", REFERENCE)):
            hung, seconds = runs(cell, args.runs, args.timeout, Path(folder))
            median = f"{statistics.median(seconds):.1f} s" if seconds else "none finished"
            print(f"{name}: {hung} of {args.runs} runs hung (over {args.timeout:.0f} s); median run {median}", flush=True)


if __name__ == "__main__":
    main()
