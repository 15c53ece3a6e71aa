#!/bin/sh
# The device check, as run on a lent GPU machine (no network) from the repository root, with the wheels that
# machine lacks carried in .whl/ (built by scripts/gpu_wheels.py). Logs go to $OUT (default: ./gpu-check/).
# 1. clustering at the paper's SAE widths on the GPU; 2. the four paper models at full size with random
# weights: serve, load, peak memory; 3. the model chapters on GPT-2 small and Mistral 7B, as time allows.
out=${OUT:-gpu-check}
mkdir -p "$out"
. scripts/device_env.sh || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.log"
python3 -c 'import torch, transformers, transformer_lens, sae_lens; print("torch", torch.__version__, "transformers", transformers.__version__)' | tee -a "$out/device.log"
timeout 120 python3 bench/discovery.py scale --sizes 65536x4096 24576x768 --device cuda \
    --methods "graph, top-k blockwise (paper's)" "graph, dense (reference)" 2>&1 | grep -v Warning | tee "$out/clustering.log"
timeout 200 python3 bench/gpu_smoke.py --hub /tmp/hub --chapters 2>&1 | grep -v Warning | tee "$out/load.log"
timeout "${CHAPTERS_SECONDS:-170}" python3 bench/gpu_smoke.py --hub /tmp/hub --models gpt2-small mistral-7b \
    --chapters arithmetic interventions off_circle circles decompose discovery 2>&1 | grep -v Warning | tee "$out/chapters.log"
