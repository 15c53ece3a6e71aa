#!/bin/sh
# Draw the corpus's calendar-list batches on a lent GPU machine (no network), from the repository root, with
# .whl/bundle.part* carried (python scripts/gpu_wheels.py --with-embedded-model) and artifacts/calendar_samples
# carried so that the batches already drawn are skipped. A 135M model leaves the GPU mostly idle, so SHARDS
# processes draw a share of the batches each (a batch's seed is its index, whichever process draws it).
# Writes $OUT/calendar_samples.tar.xz (every batch; unpack it into artifacts/) and $OUT/sample.log; sampling
# stops after SAMPLE_SECONDS, keeping the batches saved. Then, within LOAD_SECONDS, the paper's models at full
# size with random weights ($OUT/load.log).
out=${OUT:-gpu-samples}
mkdir -p "$out" /tmp/logs
. scripts/device_env.sh || exit 1
export OMP_NUM_THREADS=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/sample.log"
start=$(date +%s)
# Convert the GGUF once, before the shards would queue on its lock.
python3 -c "from mvf import models; models.converted_gguf(models.embedded_gguf(models.profile('smollm2-135m')))" || exit 1
shards=${SHARDS:-8}
i=0
while [ "$i" -lt "$shards" ]; do
    timeout "${SAMPLE_SECONDS:-300}" python3 mvf.commands.build_corpus sample --prompts calendar --batches "${BATCHES:-96}" --batch-size 128 \
        --max-new-tokens 160 --device cuda --shard "$i/$shards" >"/tmp/logs/shard$i.log" 2>&1 &
    i=$((i + 1))
done
wait
for log in /tmp/logs/shard*.log; do echo "== $log"; tr '\r' '\n' <"$log" | grep -v Warning | tail -3; done >>"$out/sample.log"
echo "sampling took $(($(date +%s) - start)) s, $(ls artifacts/calendar_samples | wc -l) batches" | tee -a "$out/sample.log"
tar -cJf "$out/calendar_samples.tar.xz" -C artifacts calendar_samples
timeout "${LOAD_SECONDS:-150}" python3 bench/gpu_smoke.py --hub /tmp/hub --chapters 2>&1 | grep -v Warning >"$out/load.log"
