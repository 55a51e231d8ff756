#!/usr/bin/env bash
# The GPU measurements in docs/benchmarks.md ("GPU"), in one run on a machine with an NVIDIA GPU
# and JAX's CUDA plugin already installed (pip install -e '.[cuda]'). Each step has its own time
# limit, so that a slow one cannot eat the others' time; the standard preset gets what is left and
# is reported as the cells it finished (rerun the same command to resume it).
#
# Usage: scripts/gpu_check.sh OUTDIR [SECONDS]   (SECONDS: the whole budget, default 3600)
set -u
out=${1:?usage: scripts/gpu_check.sh OUTDIR [SECONDS]}
budget=${2:-3600}
mkdir -p "$out"
start=$(date +%s)
left() { echo $(( budget - ($(date +%s) - start) )); }
step() {  # step NAME LIMIT_SECONDS COMMAND...: run with a time limit, log to OUTDIR/NAME.log
    local name=$1 limit=$2; shift 2
    [ "$limit" -gt "$(left)" ] && limit=$(left)
    [ "$limit" -le 5 ] && { echo "== $name: skipped, no time left"; return; }
    echo "== $name (limit ${limit} s)"
    local t0; t0=$(date +%s)
    PYTHONUNBUFFERED=1 timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    echo "   exit $rc, $(( $(date +%s) - t0 )) s wall"
    tail -n 25 "$out/$name.log"
}
nvidia-smi -L
python3 -c 'import jax, optax, equinox; print("jax", jax.__version__, jax.devices(), "optax", optax.__version__, "equinox", equinox.__version__)'
step speed 240 python3 scripts/bench_speed.py --steps 3000
step demo-cold 90 python3 -m epigate fit --demo --out "$out/demo"
step demo-warm 90 python3 -m epigate fit --demo --out "$out/demo-warm"
step bootstrap16 240 python3 -m epigate fit --demo --bootstrap 16 --out "$out/demo-bs"
step standard "$(left)" python3 -m epigate bench --preset standard --out "$out/standard"
echo "standard: $(ls "$out"/standard/cells/*.csv 2>/dev/null | wc -l) of 54 cells done; $(( $(date +%s) - start )) s in all"
