#!/usr/bin/env bash
# GPU smoke check: trains cifar10_cnn for a fixed number of SGD steps (batch 64) on cuda:0
# through @tensorflow/tfjs-node-gpu and prints samples/s and the device name.
# Exit codes: 2 = nvidia-smi missing, 3 = no GPU visible, 4 = tfjs-node-gpu not importable,
#             5 = TensorFlow did not place work on the GPU, 1 = training failed.
# Usage: bench/gpu-check.sh [steps]   (run from the repository root)
set -euo pipefail
STEPS="${1:-20}"
cd "$(dirname "$0")/.."

fail() { echo "gpu-check: FAIL: $2" >&2; exit "$1"; }

command -v nvidia-smi >/dev/null 2>&1 || fail 2 "nvidia-smi not found: no NVIDIA driver on this machine"
GPU_NAME="$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -n1 || true)"
[ -n "$GPU_NAME" ] || fail 3 "nvidia-smi lists no GPU 0 (cuda:0); check the driver and CUDA_VISIBLE_DEVICES"
node -e "require.resolve('@tensorflow/tfjs-node-gpu')" >/dev/null 2>&1 \
  || fail 4 "@tensorflow/tfjs-node-gpu is not installed (it needs CUDA 11.2 + cuDNN 8.1 and downloads libtensorflow at install)"

export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"
export GPU_CHECK_STEPS="$STEPS" GPU_NAME
exec npx tsx --conditions=@oiafed/source bench/gpu-check.ts
