# Sourced (`. scripts/device_env.sh`) on a lent GPU machine, which has no network, from the repository root: installs
# the wheels it lacks into /tmp/site and puts them and the repository on PYTHONPATH. The wheels come as
# .whl/wheels.tar.xz (scripts/gpu_wheels.py) or, with the embedded model's wheel, as .whl/bundle.part* carried over
# several calls (scripts/gpu_wheels.py --with-embedded-model). wandb gets a stand-in: sae_lens imports it at load time
# but calls it only to train or upload, and its wheel is 20 MB.
rm -rf /tmp/whl && mkdir -p /tmp/whl || return 1
if ls .whl/bundle.part* >/dev/null 2>&1; then
    cat $(ls .whl/bundle.part* | sort -V) | tar -x -C /tmp/whl || return 1
    tar -xJf /tmp/whl/wheels.tar.xz -C /tmp/whl && rm /tmp/whl/wheels.tar.xz || return 1
else
    tar -xJf .whl/wheels.tar.xz -C /tmp/whl || return 1
fi
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /tmp/whl/*.whl || return 1
mkdir -p /tmp/site/wandb
printf 'def __getattr__(name):\n    raise AttributeError(f"wandb is a stand-in here, without {name!r}")\n' > /tmp/site/wandb/__init__.py
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
