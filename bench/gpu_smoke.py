"""The paper's models at full size with random weights, on a GPU: load time, peak memory against the plan, chapter times.

    python bench/gpu_smoke.py [--models gpt2-small mistral-7b llama-3-8b gemma-2-2b] [--chapters [circles …]]
                              [--size full|tiny] [--hub DIR] [--sae-width N]

For each model, ``mvf.book.stand_ins`` writes a random-weight stand-in with the
real configuration and tokenizer into a local hub cache (``--hub``; bfloat16,
about 15 GiB each for the 7–8 B models), and SAEs in their release's layout;
no download happens (``HF_HUB_OFFLINE=1``). The script then loads each model
with ``models.load_model`` (seconds; peak GPU memory, against
``ModelProfile.gpu_memory_gib``, the plan ``models.describe`` prints) and
executes each model chapter with ``MODEL`` set to it, one kernel at a time,
printing each chapter's seconds or the error of the cell that failed. The
outputs are noise; the timings and memory are the point. On a CPU it runs
the same with the test suite's tiny stand-ins (``--size tiny``), to check the script.
The paper's SAE widths (24 576 for GPT-2 small, 65 536 for Mistral 7B) are
the default ``--sae-width``; the discovery chapter clusters them on nearest
neighbours (``N_NEIGHBOURS = "auto"``), not the dense affinity.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402

PAPER_SAE_WIDTH = {"gpt2-small-res-jb": 24576, "mistral-7b-res-wg": 65536}
GEMMA_SCOPE = "gemma-scope-2b-pt-res-canonical"
ERROR_LINES = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["gpt2-small", "mistral-7b", "llama-3-8b", "gemma-2-2b"])
    parser.add_argument("--chapters", nargs="*", default=None,
                        help="default: every chapter that takes MODEL; none given: only serve and load the models")
    parser.add_argument("--size", choices=["full", "tiny"], default=None, help="default: full on a GPU, tiny on a CPU")
    parser.add_argument("--hub", type=Path, default=None, help="hub cache folder (default: a temporary one)")
    parser.add_argument("--sae-width", type=int, default=None, help="default: the release's width (tiny: 256)")
    args = parser.parse_args()
    hub = args.hub or Path(tempfile.mkdtemp(prefix="hub-"))
    # huggingface_hub reads the cache folder when it is imported, so it is set before mvf is.
    os.environ["HF_HUB_CACHE"] = str(hub)

    from mvf import models, sae
    from mvf.book import execute, stand_ins

    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.size = args.size or ("full" if device == "cuda" else "tiny")
    if args.size == "full" and device == "cpu":
        raise SystemExit("--size full needs a GPU (random 7-8 B models take ~30 GiB of RAM in float32 on a CPU).")
    pages = [page for page in execute.model_chapters() if args.chapters is None or page.stem in args.chapters]
    env = {"HF_HUB_CACHE": str(hub), "HF_HUB_OFFLINE": "1", "MVF_RESULTS": tempfile.mkdtemp(prefix="results-")}
    for name in args.models:
        p = models.profile(name)
        started = time.perf_counter()
        stand_ins.serve_model(name, hub, size=args.size, device=device)
        served = time.perf_counter() - started
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        model = models.load_model(name, device=device)
        loaded = time.perf_counter() - started
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
        print(f"{name}: served in {served:.0f} s; loaded in {loaded:.1f} s; peak GPU memory {peak:.1f} GiB "
              f"(plan {p.gpu_memory_gib} GiB, weights {p.weights_gib:.1f} GiB)", flush=True)
        # The SAE reads the stand-in's own width (tiny or full); Gemma Scope's is fixed by its loader.
        if p.sae_release == GEMMA_SCOPE:
            stand_ins.serve_sae(GEMMA_SCOPE, hub, d_in=2304, d_sae=16384)
        elif p.sae_release in sae.RELEASES:
            width = args.sae_width or (PAPER_SAE_WIDTH[p.sae_release] if args.size == "full" else 256)
            stand_ins.serve_sae(p.sae_release, hub, d_in=model.cfg.d_model, d_sae=width)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
        # A fresh kernel per chapter: its time includes the imports, and no chapter's GPU memory reaches the next.
        for outcome in (execute.execute_variants([(page, {"MODEL": name})], env, jobs=1)[0] for page in pages):
            # The error and its cell's source, without the traceback: enough to find the failing line in a log.
            failed = "" if not outcome["error"] else ", failed: " + "\n    ".join(
                outcome["error"].split("\n\x1b", 1)[0].splitlines()[:ERROR_LINES])
            print(f"  {outcome['page'].stem}: {outcome['timing']['seconds']} s{failed}", flush=True)


if __name__ == "__main__":
    main()
