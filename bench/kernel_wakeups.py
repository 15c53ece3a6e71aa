"""Missed kernel wake-ups: plain nbclient against mvf.book.execute's guarded client, on the same notebook, in the same run.

    python bench/kernel_wakeups.py [--cells 60] [--seconds 2] [--timeout 20]

A notebook of cells that each keep torch busy for ``--seconds`` and print is executed
by plain ``nbclient`` and by ``mvf.book.execute.GuardedClient``. For every cell the
delay between the kernel's reply (its header's timestamp) and the moment the
client has finished with the cell is measured. A delay near the cell timeout
(plain) means the client's poll missed the reply and slept until the timeout,
the stall seen in book builds; the guarded client's delays stay under one
slice (``SLICE_S``). Prints both clients' delays, stalls and wall times.
"""

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mvf.book.execute import GuardedClient

CELL = """import time, torch
x, end = torch.randn(256, 256), time.monotonic() + {seconds}
while time.monotonic() < end:
    x = torch.tanh(x @ x.T / 16)
print(float(x.sum()))"""


def run(client_class, nb: nbformat.NotebookNode, folder: str, timeout: int) -> tuple[list[float], float]:
    delays = []

    def executed(cell, **_):
        reply = cell.metadata.get("execution", {}).get("shell.execute_reply")
        if reply:
            sent = datetime.datetime.fromisoformat(reply.replace("Z", "+00:00"))
            delays.append((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds())

    client = client_class(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                          resources={"metadata": {"path": folder}}, on_cell_executed=executed)
    started = time.perf_counter()
    client.execute()
    return delays, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=2.0, help="how long each cell works")
    parser.add_argument("--timeout", type=int, default=20, help="cell timeout of both clients, seconds")
    args = parser.parse_args()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL.format(seconds=args.seconds)) for _ in range(args.cells)])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    with tempfile.TemporaryDirectory() as folder:
        results = {name: run(cls, nbformat.from_dict(nb), folder, args.timeout)
                   for name, cls in (("plain nbclient", NotebookClient), ("guarded", GuardedClient))}
    for name, (delays, wall) in results.items():
        stalls = sum(d > 1 for d in delays)
        print(f"{name:15s} {len(delays)} cells in {wall:6.1f} s; reply-to-done delay median {sorted(delays)[len(delays) // 2]:.3f} s, "
              f"max {max(delays):.2f} s; cells delayed > 1 s: {stalls}")
    plain, guarded = results["plain nbclient"][1], results["guarded"][1]
    print(f"wall time plain / guarded: {plain / guarded:.2f}")


if __name__ == "__main__":
    main()
