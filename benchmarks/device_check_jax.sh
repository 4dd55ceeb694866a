#!/usr/bin/env bash
# The GPU check without TensorFlow: Keras' JAX backend, on a machine that has
# JAX (with CUDA) but neither TensorFlow nor Keras and reaches no registry.
# Keras and the two dependencies such an image lacks are installed from the
# wheels in benchmarks/wheels/ (made here by ./scripts/fetch_wheels, a few
# MB); keras_eexit runs from this source tree. Prints one "FIGURE ..." line
# per figure; each script's full output goes to a log directory. Budget:
# under 8 minutes on one GPU; on a CPU the runs are small (a check that
# everything runs, not GPU numbers).
#
#   bash benchmarks/device_check_jax.sh
#   PYTHON=python3 LOGS=/tmp/dcj bash benchmarks/device_check_jax.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
LOGS="${LOGS:-$(mktemp -d -t device_check_jax.XXXXXX)}"
mkdir -p "$LOGS"
export KERAS_BACKEND=jax
if ! "$PYTHON" -c "import keras" 2>/dev/null; then
    if ! ls benchmarks/wheels/*.whl >/dev/null 2>&1; then
        echo "Keras is not installed and benchmarks/wheels/ holds no wheels:" \
             "run ./scripts/fetch_wheels where pip works, and carry" \
             "benchmarks/wheels along." >&2
        exit 2
    fi
    SITE="$(mktemp -d -t eexit_site.XXXXXX)"
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
        --no-cache-dir --target "$SITE" benchmarks/wheels/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

DEVICE=$("$PYTHON" -c "import jax; print(jax.devices()[0].platform.upper())")
INFO=$("$PYTHON" -c "import jax, keras, keras_eexit; print(jax.devices()[0].device_kind, '| jax', jax.__version__, '| keras', keras.__version__)")
echo "FIGURE device: $DEVICE ($INFO); logs in $LOGS"
if [ "$DEVICE" = "CPU" ]; then
    DEPTH=20; FIT=(--samples 512 --batch-size 128 --epochs 2)
    MIXED=mixed_bfloat16; BATCH=(--batch 128 --repeats 2 --epochs 1)
    FISHER=(--samples 256 --batch-size 64 --repeats 1)
else
    DEPTH=56; FIT=(--samples 8192 --batch-size 256 --epochs 3)
    MIXED=mixed_float16; BATCH=(--batch 256 --repeats 5 --epochs 2)
    FISHER=(--samples 4096 --batch-size 256 --repeats 2)
fi

pick() {  # pick LOG PATTERN: the last matching line, or a clear failure
    local line
    line=$(grep -E "$2" "$1" | tail -n 1 || true)
    if [ -z "$line" ]; then
        echo "FIGURE missing: no line matching '$2' in $1" >&2
        return 1
    fi
    echo "$line"
}

# 1. Training throughput, float32 and mixed precision: MultiExitModel.fit
#    (Joint) vs the plain Keras functional twin, cifar_resnet at CIFAR shape.
for policy in float32 "$MIXED"; do
    log="$LOGS/joint_throughput_$policy.txt"
    "$PYTHON" benchmarks/joint_throughput.py --backend jax \
        --model cifar_resnet --depth "$DEPTH" --dtype-policy "$policy" \
        "${FIT[@]}" > "$log" 2>&1
    ours=$(pick "$log" "^ +ours:" | sed -E 's/.*, ([0-9]+) images\/s\)/\1/')
    plain=$(pick "$log" "^ +plain:" | sed -E 's/.*, ([0-9]+) images\/s\)/\1/')
    ratio=$(pick "$log" "^ratio ours/plain" | sed -E 's/ \(target.*//')
    echo "FIGURE training throughput (cifar_resnet$DEPTH, jax, $policy, $DEVICE): multi-exit fit $ours images/s, plain Keras fit $plain images/s; $ratio"
done

# 2. Batched early exit (bucketed compaction) vs the plain forward pass.
"$PYTHON" benchmarks/batched_early_exit.py --backend jax "${BATCH[@]}" \
    > "$LOGS/batched_early_exit.txt" 2>&1
for model in cifar_resnet msdnet_cifar; do
    # One line per policy: "<policy>: <speedup>: <% of the FLOPs ratio>,
    # <% of the measured best at the same decisions> (CPU time ...)".
    lines=$(awk -v m="$model" '
        $0 ~ "^" m ":" { inside = 1; next }
        inside && /^[^ ]/ { inside = 0 }
        inside && /^  policy / { policy = $2 }
        inside && /^    speedup measured / {
            sub(/^ +speedup measured /, ""); print policy ": " $0 }
    ' "$LOGS/batched_early_exit.txt")
    if [ -z "$lines" ]; then
        echo "FIGURE missing: no speedup line for $model in $LOGS/batched_early_exit.txt" >&2
        exit 1
    fi
    while IFS= read -r figure; do
        echo "FIGURE batched early exit ($model, jax, $DEVICE, ${figure%%:*} policy): measured ${figure#*: }"
    done <<< "$lines"
done

# 3. EWC's Fisher pass (jax.vmap of per-sample gradients) vs one epoch.
"$PYTHON" benchmarks/fisher_vs_epoch.py --backend jax --model cifar_resnet \
    --depth "$DEPTH" "${FISHER[@]}" > "$LOGS/fisher_vs_epoch.txt" 2>&1
epoch=$(pick "$LOGS/fisher_vs_epoch.txt" "^epoch:")
fisher=$(pick "$LOGS/fisher_vs_epoch.txt" "^fisher pass:")
ratio=$(pick "$LOGS/fisher_vs_epoch.txt" "^ratio fisher/epoch")
echo "FIGURE Fisher pass vs epoch (cifar_resnet$DEPTH exit 1, jax, $DEVICE): $fisher; $epoch; $ratio"
