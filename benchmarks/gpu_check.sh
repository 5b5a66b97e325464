#!/usr/bin/env bash
# GPU check of s2v-train: the CUDA paths the CPU-only CI cannot run (bf16 autocast, fused AdamW,
# torch.compile, NCCL under torchrun, the protocols on the GPU) and full-size throughput.
#
#   bash benchmarks/gpu_check.sh [STEPS]     # from the repo root, project installed, one GPU
#
# Logs go to $OUT (or gpu_out/). Every stage has its own time limit so that one hang does not
# eat the rest; the script goes on past a failed stage and prints a summary of exit codes.
set -u
STEPS=${1:-40}
DEV=${DEV:-cuda}
EXTRA=${EXTRA:-}  # e.g. EXTRA="--model-size tiny" for a dry run on the CPU with DEV=cpu
O=${OUT:-gpu_out}
T=${TMPDIR:-/tmp}/s2v_gpu
mkdir -p "$O" "$T"
export PYTHONUNBUFFERED=1
declare -a SUMMARY=()

stage() { # stage NAME LIMIT_S CMD...
    local name=$1 limit=$2
    shift 2
    echo "=== $name"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$O/$name.log" 2>&1
    local rc=$?
    tail -n 12 "$O/$name.log"
    SUMMARY+=("$name rc=$rc $((SECONDS - t0))s")
}

python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"

stage corpus 60 bash -c "s2v-prep synth $T/raw --classes 60 --per-class 20 --seed 1 -q &&
    s2v-prep ntu60 $T/raw -o $T/s.zarr -q --overwrite"

# the paper's model and batch (128), bf16 autocast, eager then compiled
stage pretrain_eager 90 s2v-train pretrain "$T/s.zarr" -b xsub -o "$T/pt" --batch-size 128 \
    --max-steps "$STEPS" --workers 4 --in-memory --device "$DEV" --set run.log_every=10 $EXTRA
# resume on the GPU: 10 more steps from the eager run's checkpoint
stage resume 60 s2v-train pretrain "$T/s.zarr" -b xsub -o "$T/pt" --batch-size 128 \
    --max-steps $((STEPS + 10)) --workers 4 --in-memory --device "$DEV" --resume

# NCCL, one process under torchrun
stage torchrun 90 torchrun --standalone --nproc-per-node 1 -m s2v.train pretrain "$T/s.zarr" \
    -b xsub -o "$T/ptd" --batch-size 128 --max-steps 10 --workers 2 --in-memory $EXTRA

# the protocols on the GPU, short schedules
stage linear 60 s2v-train linear "$T/pt" "$T/s.zarr" -b xsub --epochs 3 --device "$DEV" \
    --cache-features
stage finetune 90 s2v-train finetune "$T/pt" "$T/s.zarr" -b xsub --epochs 2 --device "$DEV"
stage test 60 s2v-train test "$T/pt/finetune-ntu60-xsub" "$T/s.zarr" --device "$DEV"

# one step, ours vs the reference implementation's way, on the GPU
[ "$DEV" = cpu ] || stage train_step 120 python3 benchmarks/train_step.py --device "$DEV" --batch 128 --warmup 3 \
    --steps 10

stage pretrain_compile 180 s2v-train pretrain "$T/s.zarr" -b xsub -o "$T/ptc" --batch-size 128 \
    --max-steps "$STEPS" --workers 4 --in-memory --device "$DEV" --compile --set run.log_every=10 $EXTRA
for r in pt ptc; do
    echo "--- $r metrics (last 2)"
    tail -n 2 "$T/$r/metrics.jsonl" 2>/dev/null
done

# the test suite with CUDA visible (tests that pick the 'auto' device run on the GPU)
stage pytest 150 python3 -m pytest -q -p no:cacheprovider -n 8 tests

echo "=== summary"
printf '%s\n' "${SUMMARY[@]}" | tee "$O/summary.txt"
