#!/usr/bin/env bash
# One command for the first day a GPU (or any accelerator) is available:
# training throughput, batched early exit and mixed precision on whatever
# device TensorFlow sees, one line per figure (plus each script's own
# lines). Budget: under 8 minutes on one GPU (smaller runs than the CPU
# defaults of the scripts).
#
#   bash benchmarks/device_check.sh            # from the repository root
#   PYTHON=/path/to/python bash benchmarks/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== devices"
"$PYTHON" -c "import tensorflow as tf; d = tf.config.list_physical_devices(); print('devices:', ', '.join(x.device_type + ':' + x.name.split(':')[-1] for x in d))"

echo "== training throughput (MultiExitModel.fit vs plain Keras, joint)"
"$PYTHON" benchmarks/joint_throughput.py --model cifar_resnet --epochs 4 \
    --samples 4096 --batch-size 128 | tail -n 4

echo "== batched early exit (compaction vs full forward, batch 256)"
"$PYTHON" benchmarks/batched_early_exit.py --epochs 4 --batch 256 \
    | grep -E "^(Device|[a-z_]+:|  (batch|speedup|decisions))"

echo "== mixed precision (float32 vs mixed_float16 on GPU / bfloat16 on CPU)"
"$PYTHON" benchmarks/scale_out.py --model cifar_resnet --epochs 3 \
    --mixed auto | tail -n 6
