#!/usr/bin/env bash
# One command for the first day a GPU (or any accelerator) is available:
# training throughput, batched early exit and mixed precision on whatever
# device TensorFlow sees. Prints one line per figure ("FIGURE ..."); each
# script's full output goes to a log directory. Budget: under 8 minutes on
# one GPU. Without an accelerator the runs are smaller (the figures are then
# a check that everything runs, not GPU numbers).
#
#   bash benchmarks/device_check.sh            # from anywhere
#   PYTHON=/path/to/python LOGS=/tmp/dc bash benchmarks/device_check.sh
#   bash benchmarks/device_check.sh --backend jax   # device_check_jax.sh:
#                                                   # JAX, no TensorFlow
set -euo pipefail
if [ "${1:-}" = "--backend" ]; then
    case "${2:-}" in
        jax) exec bash "$(dirname "$0")/device_check_jax.sh" ;;
        tensorflow) ;;
        *) echo "--backend: expected jax or tensorflow, got '${2:-}'" >&2
           exit 2 ;;
    esac
fi
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
LOGS="${LOGS:-$(mktemp -d -t device_check.XXXXXX)}"
mkdir -p "$LOGS"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# The device TensorFlow will use: GPU, TPU or CPU (the last logical one).
DEVICE=$("$PYTHON" -c "import tensorflow as tf; d = [x.device_type for x in tf.config.list_logical_devices()]; print('GPU' if 'GPU' in d else 'TPU' if 'TPU' in d else 'CPU')" 2>/dev/null)
echo "FIGURE device: $DEVICE ($("$PYTHON" -c "import tensorflow as tf; print(', '.join(x.name for x in tf.config.list_physical_devices()))" 2>/dev/null)); logs in $LOGS"
if [ "$DEVICE" = "CPU" ]; then
    JOINT=(--samples 512 --batch-size 128 --epochs 2); DEPTH=20
    MIXED=(--samples 512 --batch-size 128 --epochs 2)
else
    JOINT=(--samples 8192 --batch-size 256 --epochs 4); DEPTH=56
    MIXED=(--samples 8192 --batch-size 256 --epochs 3)
fi

# A script's line matching a pattern, or a clear failure naming the log.
pick() {  # pick LOG PATTERN
    local line
    line=$(grep -E "$2" "$1" | tail -n 1 || true)
    if [ -z "$line" ]; then
        echo "FIGURE missing: no line matching '$2' in $1" >&2
        return 1
    fi
    echo "$line"
}

# 1. Training throughput, float32 and mixed precision (mixed_float16 on a
#    GPU, mixed_bfloat16 on a CPU): MultiExitModel.fit (Joint) vs the plain
#    Keras functional twin, cifar_resnet(56) on a GPU (20 on a CPU) at
#    CIFAR shape on synthetic data, fastest epoch.
if [ "$DEVICE" = "CPU" ]; then POLICY=mixed_bfloat16; else POLICY=mixed_float16; fi
for policy in float32 "$POLICY"; do
    log="$LOGS/joint_throughput_$policy.txt"
    "$PYTHON" benchmarks/joint_throughput.py --model cifar_resnet \
        --depth "$DEPTH" --dtype-policy "$policy" "${JOINT[@]}" \
        > "$log" 2>&1
    ratio=$(pick "$log" "^ratio ours/plain")
    ours=$(pick "$log" "^ +ours:" | sed -E 's/.*, ([0-9]+) images\/s\)/\1/')
    plain=$(pick "$log" "^ +plain:" | sed -E 's/.*, ([0-9]+) images\/s\)/\1/')
    echo "FIGURE training throughput (cifar_resnet$DEPTH, $policy, $DEVICE): multi-exit fit $ours images/s, plain Keras fit $plain images/s; $ratio"
done

# 2. Batched early exit: compaction vs the plain forward pass, batch 256.
"$PYTHON" benchmarks/batched_early_exit.py --batch 256 \
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
        echo "FIGURE batched early exit ($model, batch 256, $DEVICE, ${figure%%:*} policy): measured ${figure#*: }"
    done <<< "$lines"
done

# 3. Mixed precision: images/s of float32 vs mixed_float16 (GPU) or
#    mixed_bfloat16 (CPU), MultiExitModel.fit with Joint.
"$PYTHON" benchmarks/scale_out.py --model cifar_resnet --mixed auto \
    "${MIXED[@]}" > "$LOGS/scale_out.txt" 2>&1
header=$(pick "$LOGS/scale_out.txt" "^variant ")
joint=$(pick "$LOGS/scale_out.txt" "^joint ")
mixed=$(echo "$header" | awk '{print $4}')
echo "$joint" | awk -v mixed="$mixed" -v device="$DEVICE" '{
    printf "FIGURE mixed precision (cifar_resnet20 joint, %s): float32 %s img/s, %s %s img/s, %sx\n", device, $2, mixed, $3, $4 }'
