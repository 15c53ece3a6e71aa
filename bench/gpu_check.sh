#!/bin/sh
# The device check, as run on a lent GPU machine (no network) from the repository root, with the wheels that
# machine lacks carried in .whl/ (built by scripts/gpu_wheels.py). Logs go to $OUT (default: ./gpu-check/).
# 1. clustering at the paper's SAE widths on the GPU; 2. the four paper models at full size with random
# weights: serve, load, peak memory; 3. the model chapters on GPT-2 small and Mistral 7B, as time allows.
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
# The wheels the machine lacks (scripts/gpu_wheels.py builds .whl/wheels.tar.xz here; carry .whl), and a stand-in
# for wandb, which sae_lens imports at load time but calls only to train or upload (its wheel is 20 MB).
rm -rf /tmp/whl && mkdir -p /tmp/whl && tar -xJf .whl/wheels.tar.xz -C /tmp/whl || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/whl/*.whl || exit 1
mkdir -p /tmp/site/wandb
printf 'def __getattr__(name):\n    raise AttributeError(f"wandb is a stand-in here, without {name!r}")\n' > /tmp/site/wandb/__init__.py
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.log"
python3 -c 'import torch, transformers, transformer_lens, sae_lens; print("torch", torch.__version__, "transformers", transformers.__version__)' | tee -a "$out/device.log"
timeout 120 python3 bench/discovery.py scale --sizes 65536x4096 24576x768 --device cuda \
    --methods "graph, top-k blockwise (paper's)" "graph, dense (reference)" 2>&1 | grep -v Warning | tee "$out/clustering.log"
timeout 200 python3 bench/gpu_smoke.py --hub /tmp/hub --chapters 2>&1 | grep -v Warning | tee "$out/load.log"
timeout "${CHAPTERS_SECONDS:-170}" python3 bench/gpu_smoke.py --hub /tmp/hub --models gpt2-small mistral-7b \
    --chapters arithmetic interventions off_circle circles decompose discovery 2>&1 | grep -v Warning | tee "$out/chapters.log"
