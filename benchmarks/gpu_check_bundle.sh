#!/usr/bin/env bash
# What benchmarks/gpu_check.py needs on the lent GPU machine, and the one command that runs it
# there (docs/gpu.md). That machine has Python 3.12 and torch but no Ray, Optuna or DeepSpeed, no
# Fashion-MNIST and no network: what it lacks travels in .whl/ (ignored by git), the wheels and
# the four IDX files, at most 64 MiB with the working tree. Run this here (pip reaches the
# registry), then the command it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DEST=.whl
CAP_MIB=56  # the working tree (~4 MiB) and .whl/ travel together under 64 MiB
FASHION=${FASHION:-/usr/share/datasets/fashion-mnist}  # apt-get install dataset-fashion-mnist

# The versions the tests ran with. The image already has numpy, packaging, psutil, py-cpuinfo,
# tqdm, einops, msgpack, ninja, PyYAML and MarkupSafe; the rest of DeepSpeed's and Optuna's
# requirements are here. Ray is not: gpu_check needs none.
WHEELS=(
    optuna==5.1.0 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 SQLAlchemy==2.1.9 greenlet==3.5.6
    hjson==3.1.0 pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0
    typing-inspection==0.4.5 typing_extensions==4.16.0
)
DEEPSPEED=deepspeed==0.19.8

rm -rf "$DEST" && mkdir -p "$DEST"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
    manylinux1_x86_64 manylinux_2_24_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
    platforms+=(--platform "$p")
done
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d "$DEST" "${WHEELS[@]}"
# DeepSpeed publishes no wheel: a pure-Python one, its ops JIT-built on the GPU (nvcc is there).
DS_BUILD_OPS=0 "$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$DEST" "$DEEPSPEED"

wheels=$(du -cb "$DEST"/*.whl | tail -1 | cut -f1)
mkdir -p "$DEST/fashion-mnist"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    cp "$FASHION/$f.gz" "$DEST/fashion-mnist/" || {
        echo "gpu_check_bundle: $FASHION/$f.gz missing: apt-get install dataset-fashion-mnist" >&2
        exit 1
    }
done
bytes=$(du -sb "$DEST" | cut -f1)
echo "$(ls "$DEST"/*.whl | wc -l) wheels ($((wheels / 1024)) KiB) and Fashion-MNIST:" \
    "$((bytes / 1024)) KiB in $DEST/"
if ((bytes > CAP_MIB * 1024 * 1024)); then
    echo "gpu_check_bundle: $DEST holds $((bytes / 1048576)) MiB, over the $CAP_MIB MiB cap" >&2
    exit 1
fi
cat <<'CMD'
On the GPU machine (the device tool's run, carry [".whl"], timeout_s 600):
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD && python3 benchmarks/gpu_check.py --data-dir .whl/fashion-mnist --out $OUT/gpu_check.json
CMD
