#!/usr/bin/env bash
# benchmarks/gpu_check.sh: every CUDA path of resnet-bench once, on one GPU, in about 8 minutes; results under $OUT.
# The project's copy of ../shared/gpu/check.sh, kept working as the code changes (a GPU session copies this one
# into .gpucheck/check.sh). Run from the repository root of a copy of the project on a GPU machine:
#   bash .gpucheck/check.sh
# DRY=1 runs every step on this machine's CPU instead, on tiny made-up data and short budgets, to check that the
# script still fits the command line (the verdicts then say nothing about CUDA):
#   DRY=1 OUT=/tmp/gpucheck-dry bash benchmarks/gpu_check.sh
# Beside the tree it needs (git-excluded):
#   .gpucheck/  this script, and cifar10-jpeg.tar.gz and make_cifar10.py copied from ../shared/data (19 MB)
#   .whl/       only if .venv has no CUDA torch: wheels that machine lacks (fvcore, iopath, yacs, termcolor,
#               wandb and its requirements: pydantic, pydantic-core, annotated-types, typing-inspection,
#               sentry-sdk, gitpython, gitdb, smmap, platformdirs, ...), built here with `pip wheel` or `pip download`
# Environment: .venv if it imports a CUDA torch; otherwise the machine's own python3 and torch (a GPU machine
# without a package index keeps the torch it has) with .whl installed into /tmp/site. env.txt records what ran.
# A starting point: extend its steps as the project grows (run arrays, multi-GPU), keep it under 8 minutes.
set -uo pipefail
DRY=${DRY:-0}; DEV=cuda
# the steps' lengths: on a GPU as the check was sized; DRY, a few iterations each on the CPU
G_SCALE=0.04; J_SCALE=0.02; T_SCALE=0.005; A_SCALE=0.02; ITERS=100; WARM=10; A_ITERS=30; NET18=resnet18; GRAPHS=reduce-overhead
A_SPECS=(resnet20 resnet56); A_SIZES=1,2,4,8; MAX_ERR=75  # the torchrun run must learn something on real CIFAR
if (( DRY )); then  # random data: no error bound; one small net, two array sizes
  DEV=cpu; G_SCALE=0.0005; J_SCALE=0.0005; T_SCALE=0.0005; A_SCALE=0.0005; ITERS=3; WARM=1; A_ITERS=2
  NET18="resnet18(blocks=1-1-1-1)"; GRAPHS=off; A_SPECS=(resnet20); A_SIZES=1,2; MAX_ERR=100
fi
START=$(date +%s); BUDGET=${BUDGET:-530}            # seconds for all steps; each is also capped below
(( DRY )) && BUDGET=${DRY_BUDGET:-900}           # the CPU is slower: every step runs, none is skipped
OUT=${OUT:-/tmp/gpucheck-out}; W=/tmp/gpucheck; R=$W/results
mkdir -p "$OUT" "$W" "$R"; : >"$W/steps.txt"
SUM=$OUT/summary.md
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled WANDB_SILENT=true MPLBACKEND=Agg

left() { echo $(( BUDGET - ($(date +%s) - START) )); }
verdict() { echo "- $*" >>"$SUM"; echo "VERDICT: $*"; }
# step SLUG MAX_S SIGNAL CMD...: time-boxed by MAX_S and by what is left; output also in $W/SLUG.log
step() {
  local slug=$1 max=$2 sig=$3; shift 3
  local t; t=$(( $(left) - 5 )); (( t > max )) && t=$max
  if (( t < 25 )); then verdict "$slug: SKIPPED (budget spent)"; return 99; fi
  echo "=== $slug (limit ${t}s) $(date +%T): $*"
  local s; s=$(date +%s)
  timeout -s "$sig" -k 20 "$t" "$@" 2>&1 | tee "$W/$slug.log"; local rc=${PIPESTATUS[0]}
  echo "$slug $s $(date +%s) $rc" >>"$W/steps.txt"
  echo "=== $slug rc=$rc in $(( $(date +%s) - s ))s"
  return "$rc"
}

# ---- 0. environment and data --------------------------------------------------------------------------
if (( DRY )); then
  PY=$PWD/.venv/bin/python; KIND=".venv, DRY run on the CPU"
elif [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys,torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  PY=$PWD/.venv/bin/python; KIND=".venv"
else
  PY=$(command -v python3); KIND="image python3"
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} && KIND="$KIND + .whl"
  fi
fi
TR=("$(dirname "$PY")/torchrun"); [ -x "${TR[0]}" ] || TR=("$PY" -m torch.distributed.run)
printf '# resnet-bench GPU check, %s\n\nenvironment: %s (%s); details in env.txt\n\n' "$(date -u +%FT%TZ)" "$KIND" "$PY" >"$SUM"
"$PY" - >"$OUT/env.txt" 2>&1 <<'EOF'
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "| inductor fx cache", torch._inductor.config.fx_graph_cache)
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "| bf16", torch.cuda.is_bf16_supported(),
          "| free/total GiB", [round(x / 2**30, 1) for x in torch.cuda.mem_get_info()])
for name in ("torchvision", "timm", "fvcore", "wandb", "pandas", "seaborn", "scipy", "psutil", "tqdm", "ray", "pytest"):
    try:
        print(name, getattr(__import__(name), "__version__", "?"))
    except Exception as error:
        print(name, "MISSING", type(error).__name__, error)
EOF
nvidia-smi >>"$OUT/env.txt" 2>&1; cat "$OUT/env.txt"
if ! DRY=$DRY "$PY" -c 'import os, torch, torchvision, timm, fvcore.nn, wandb, pandas, seaborn, scipy, psutil, tqdm; assert os.environ["DRY"] == "1" or torch.cuda.is_available()'; then
  verdict "environment: FAIL, no CUDA torch or a dependency missing (env.txt); nothing else ran"; exit 1
fi
(( DRY )) || ( while :; do echo "$(date +%s) $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits)"; sleep 1; done ) >"$W/smi.txt" 2>/dev/null &
SMI=$!
D=$W/cifar; F=$W/cjf
if (( DRY )); then  # tiny made-up data in the real layouts: 2,000 CIFAR training images, 30 a class as folders
  rm -rf "$D" "$F"
  "$PY" - "$D" "$F" <<'EOF'
import pickle, sys
from pathlib import Path
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
cifar = Path(sys.argv[1]) / "cifar-10-batches-py"; cifar.mkdir(parents=True)
for name, size in [(f"data_batch_{i}", 400) for i in range(1, 6)] + [("test_batch", 400)]:
    pickle.dump({b"batch_label": name.encode(), b"labels": rng.integers(0, 10, size).tolist(),
                 b"data": rng.integers(0, 256, (size, 3072), dtype=np.uint8),
                 b"filenames": [f"{i}.png".encode() for i in range(size)]}, open(cifar / name, "wb"))
pickle.dump({"label_names": [str(i) for i in range(10)], "num_cases_per_batch": 400}, open(cifar / "batches.meta", "wb"))
for split, count in (("train", 30), ("val", 10)):
    for label in ("a", "b", "c"):
        (Path(sys.argv[2]) / split / label).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (48, 56, 3), dtype=np.uint8)).save(Path(sys.argv[2]) / split / label / f"{i}.jpg")
EOF
  MAKE=0
else
  [ -f .gpucheck/make_cifar10.py ] || { verdict "data: FAIL, .gpucheck/ holds no make_cifar10.py"; kill "$SMI"; exit 1; }
  "$PY" .gpucheck/make_cifar10.py "$D" >"$W/make_cifar10.log" 2>&1 &   # about a minute, single-threaded
  MAKE=$!
  mkdir -p "$F" && tar -xzf .gpucheck/cifar10-jpeg.tar.gz -C "$F" --wildcards 'train/*/0[0-2][0-9][0-9].jpg' \
    'test/*/00[0-9][0-9].jpg' && mv "$F/test" "$F/val"   # folder layout: 300 train / 100 val images a class
fi

cat >"$W/check.py" <<'EOF'
"""Verdicts from the records the steps wrote: python check.py KIND ARGS..."""
import glob, json, math, os, sys

def runs(results):
    found = []
    for d in sorted(glob.glob(os.path.join(results, "runs", "*"))):
        read = lambda n: json.load(open(os.path.join(d, n))) if os.path.exists(os.path.join(d, n)) else {}
        m = os.path.join(d, "metrics.jsonl")
        rows = [json.loads(line) for line in open(m)] if os.path.exists(m) else []
        found.append({"summary": read("summary.json"), "config": read("config.json"), "rows": rows})
    return found

def steady(rows):  # harmonic mean of the per-segment img/s after the first (compile, graph recording)
    v = [r["throughput/train_img_s"] for r in rows[1:] if r.get("throughput/train_img_s")]
    return len(v) / sum(1 / x for x in v) if v else float("nan")

def one(results):
    found = runs(results)
    return found[0] if len(found) == 1 else None

def num(value):
    return float("nan") if value is None else float(value)

def describe(run):
    s, c = run["summary"], run["config"]
    e = c.get("execution", {})
    return (f"{s.get('status')}, test {num(s.get('test_error')):.2f}%, train {num(s.get('train_error')):.2f}%, "
            f"steady {steady(run['rows']):,.0f} img/s (summary train_img_s {num(s.get('train_img_s')):,.0f}, "
            f"wall {num(s.get('wall_seconds')):.0f} s), peak {num(s.get('peak_memory_mb')):,.0f} MB, "
            f"{e.get('precision')}/{e.get('compile')}/{c.get('dataset', {}).get('placement')}, "
            f"compile {s.get('compile_seconds')} s, share {c.get('dataset', {}).get('device_share')}")

def log_counts(paths):
    text = "".join(open(p, errors="replace").read() for p in (paths or "").split(",") if p and os.path.exists(p))
    return {"recompiles": text.count("Recompiling function"), "cudagraph_skips": text.count("skipping cudagraphs"),
            "graph_per_size": text.count("distinct input size"), "sampler_eager": text.count("crop sampler failed"),
            "tracebacks": text.count("Traceback")}

def pair(name, a_dir, b_dir, max_dtest, max_rel, log_a=None):
    a, b = one(a_dir), one(b_dir)
    if not a or not b or a["summary"].get("status") != "finished" or b["summary"].get("status") != "finished":
        return "FAIL", f"{name}: a run did not finish ({a and describe(a)} | {b and describe(b)})", {}
    ra, rb = a["rows"], b["rows"]
    if not ra or not rb:
        return "FAIL", f"{name}: no metrics rows", {}
    same_points = [r["iteration"] for r in ra] == [r["iteration"] for r in rb] and [r["lr"] for r in ra] == [r["lr"] for r in rb]
    rel = abs(ra[0]["train/loss"] - rb[0]["train/loss"]) / abs(rb[0]["train/loss"])
    dtest = abs(a["summary"]["test_error"] - b["summary"]["test_error"])
    gap = max(r["summary"]["test_error"] - r["summary"]["train_error"] for r in (a, b))
    counts = log_counts(log_a)
    bad = not same_points or dtest > 2 * max_dtest or rel > 10 * max_rel or gap > 25 or counts["tracebacks"]
    warn = dtest > max_dtest or rel > max_rel or counts["cudagraph_skips"] or counts["sampler_eager"]
    speed = steady(ra) / steady(rb)
    detail = (f"{name}: A {describe(a)} | B {describe(b)} | first logged loss rel diff {rel:.2e}, final test diff "
              f"{dtest:.2f} pp, worst test-train gap {gap:.1f} pp, same iterations/lr {same_points}, A/B steady speed "
              f"{speed:.2f}x, A's log {counts}")
    return ("FAIL" if bad else "WARN" if warn else "OK"), detail, {"rel": rel, "dtest": dtest, "speed": speed, **counts}

def main():
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == "pair":
        verdict, detail, numbers = pair(args[0], args[1], args[2], float(args[3]), float(args[4]), args[5] if len(args) > 5 else None)
    elif kind == "jobs":  # jobs results dir, solo results dir
        found, solo = runs(args[0]), one(args[1])
        done = [r for r in found if r["summary"].get("status") == "finished"]
        total = sum(steady(r["rows"]) for r in done)
        base = steady(solo["rows"]) if solo else float("nan")
        numbers = {"runs": len(found), "finished": len(done), "aggregate": total, "solo": base}
        verdict = "OK" if len(done) == 2 and total >= 0.9 * base else "WARN" if len(done) == 2 else "FAIL"
        detail = (f"--jobs 2 on one GPU: {len(done)}/{len(found)} finished; " + "; ".join(describe(r) for r in found)
                  + f" | aggregate steady {total:,.0f} img/s against {base:,.0f} solo ({total / base:.2f}x)")
    elif kind == "seeds":  # results dir, seeds, expected compile: one array's runs, each its own record
        found = runs(args[0])
        done = [r for r in found if r["summary"].get("status") == "finished"]
        arrays = {tuple(r["config"].get("execution", {}).get("array_seeds", ())) for r in found}
        compiled = {r["config"].get("execution", {}).get("compile") for r in found}
        numbers = {"runs": len(found), "finished": len(done)}
        verdict = "OK" if len(done) == int(args[1]) and arrays == {tuple(range(int(args[1])))} and compiled == {args[2]} else "FAIL"
        detail = f"--seeds {args[1]} as one array: {len(done)}/{len(found)} finished, array_seeds {arrays}; " + "; ".join(describe(r) for r in found)
    elif kind == "single":  # results dir, max test error, expected compile, label
        run = one(args[0])
        e = (run or {}).get("config", {}).get("execution", {})
        ok = bool(run) and run["summary"].get("status") == "finished" and num(run["summary"].get("test_error")) <= float(args[1]) \
            and e.get("compile") == args[2] and e.get("world_size") == 1
        verdict, numbers = ("OK" if ok else "FAIL"), {}
        detail = f"{args[3]}: {describe(run) if run else 'no record'}"
    else:
        raise SystemExit(f"unknown check {kind}")
    print(json.dumps({"kind": kind, "args": args, "verdict": verdict, **numbers}), file=open(os.environ["CHECKS"], "a"))
    print(f"{verdict}: {detail}")

main()
EOF
export CHECKS=$OUT/checks.jsonl; : >"$CHECKS"
check() { local line; line=$("$PY" "$W/check.py" "$@" 2>&1 | tail -1); verdict "$line"; }

# ---- 1. tests that touch CUDA logic (the suite has no CUDA-marked tests: it was written on CPUs) -------
step tests 60 TERM "$PY" -m pytest -q -p no:cacheprovider -k cuda tests/test_train.py tests/test_distributed.py
rc=$?; verdict "tests -k cuda (no CUDA-marked tests exist): rc $rc (0 passed, 5 none collected)"

# ---- 2. ImageNet-style folder data: compiled crop sampler on CUDA; streamed against resident ----------
FA=(--dataset "folder:$F" --recipe smoke --compile off --precision fp32 --wandb disabled --device "$DEV")
step folder-resident 110 INT "$PY" -m bench train "$NET18" "${FA[@]}" --data-placement resident --results-dir "$R/resident"
step folder-stream 80 INT "$PY" -m bench train "$NET18" "${FA[@]}" --data-placement stream --results-dir "$R/stream"
check pair "stream vs resident (fp32 eager, same batches)" "$R/stream" "$R/resident" 2.0 1e-3 "$W/folder-resident.log,$W/folder-stream.log"

# ---- 3. CIFAR: CUDA graphs on and off, same seed and recipe (bf16 auto both) ---------------------------
for i in $(seq 150); do kill -0 "$MAKE" 2>/dev/null || break; sleep 1; done
[ -f "$D/cifar-10-batches-py/test_batch" ] || { verdict "CIFAR build: FAIL ($(tail -2 "$W/make_cifar10.log"))"; }
C=(--data-dir "$D" --no-download --wandb disabled --device "$DEV")
step graphs 150 INT env TORCH_LOGS=recompiles,perf_hints "$PY" -m bench train resnet20 --scale "$G_SCALE" "${C[@]}" --results-dir "$R/graphs"
step eager 90 INT "$PY" -m bench train resnet20 --scale "$G_SCALE" --compile off "${C[@]}" --results-dir "$R/eager"
check pair "CUDA graphs (A) vs eager (B), resnet20 x$G_SCALE" "$R/graphs" "$R/eager" 3.0 0.05 "$W/graphs.log"

# ---- 4. bench perf on CUDA, short (no depth/batch series, no W&B) --------------------------------------
step perf 150 INT "$PY" -m bench perf resnet20 --device "$DEV" --data-dir "$D" --iters "$ITERS" --warmup "$WARM" --repeats 1 \
  --depths --batch-sizes --no-wandb --out "$W/perf"
rc=$?; cp "$W/perf/perf.md" "$W/perf/perf.csv" "$OUT/" 2>/dev/null
verdict "perf: rc $rc; $(grep -E '\| resnet20 \| (train|inference) img/s' "$W/perf/perf.md" 2>/dev/null | tr -s ' ' | tr '\n' ' ')"

# ---- 5. two runs time-sharing one GPU (--jobs 2 > 1 GPU) -------------------------------------------------
cat >"$W/gpucheck.toml" <<'EOF'
name = "gpucheck"
dataset = "cifar10"
recipe = "paper"
[experiments.seeds]
title = "resnet20, two seeds at once on one GPU"
report = "compare"
runs = ["resnet20"]
EOF
step jobs2 130 INT "$PY" -m bench suite "$W/gpucheck.toml" --scale "$J_SCALE" --seeds 2 --jobs 2 --device "$DEV" --data-dir "$D" \
  --results-dir "$R/jobs" --wandb disabled
check jobs "$R/jobs" "$R/graphs"

# ---- 6. torchrun, one process (NCCL is NOT exercised: WORLD_SIZE=1 makes no process group) -------------
step torchrun 90 TERM "${TR[@]}" --nproc-per-node 1 -m bench train resnet20 --scale "$T_SCALE" "${C[@]}" --results-dir "$R/torchrun"
check single "$R/torchrun" "$MAX_ERR" "$GRAPHS" "torchrun --nproc-per-node 1 (no NCCL: one rank)"

# ---- 7. run arrays (issue 17): K runs alone against one array of K, fused and in turn, resnet20 and resnet56,
# K = 1, 2, 4, 8, with the GPU's utilisation; then 3 seeds trained as one array with the default execution (CUDA graphs over vmap)
step array-perf 180 INT "$PY" -m bench perf "${A_SPECS[@]}" --array "$A_SIZES" --device "$DEV" --data-dir "$D" \
  --iters "$A_ITERS" --warmup "$WARM" --repeats 1 --out "$W/array"
rc=$?; cp "$W/array/array.md" "$W/array/array.csv" "$OUT/" 2>/dev/null
verdict "array perf: rc $rc; $(grep -E '^\| resnet' "$W/array/array.md" 2>/dev/null | tr -s ' ' | tr '\n' ' ')"
step array-train 120 INT "$PY" -m bench train resnet20 --scale "$A_SCALE" --seeds 3 "${C[@]}" --results-dir "$R/array"
(( $? == 99 )) || check seeds "$R/array" 3 "$GRAPHS"

# ---- 8. if time is left: folder data with the default CUDA graphs (compiled sampler feeding graphs) ----
step folder-graphs 100 INT "$PY" -m bench train "$NET18" --dataset "folder:$F" --recipe smoke --wandb disabled --device "$DEV" \
  --results-dir "$R/folder-graphs" && check single "$R/folder-graphs" "$(( MAX_ERR > 95 ? MAX_ERR : 95 ))" "$GRAPHS" "folder data, CUDA graphs + compiled sampler"

# ---- wrap up: GPU use per step, records (no checkpoints) -------------------------------------------------
kill "$SMI" 2>/dev/null
"$PY" - "$W/steps.txt" "$W/smi.txt" >>"$SUM" <<'EOF'
import sys
samples = []
for line in open(sys.argv[2]):
    try:
        t, rest = line.split(" ", 1); util, mem = rest.split(","); samples.append((int(t), float(util), float(mem)))
    except ValueError:
        pass
print("\n| step | rc | seconds | mean GPU util % | max GPU MiB |\n| --- | ---: | ---: | ---: | ---: |")
for line in open(sys.argv[1]):
    name, start, end, rc = line.split()
    inside = [s for s in samples if int(start) <= s[0] <= int(end)]
    util = sum(s[1] for s in inside) / len(inside) if inside else float("nan")
    print(f"| {name} | {rc} | {int(end) - int(start)} | {util:.0f} | {max((s[2] for s in inside), default=0):.0f} |")
EOF
echo "total $(( $(date +%s) - START )) s" >>"$SUM"
tar -czf "$OUT/records.tar.gz" -C "$W" --exclude='*.pt' --exclude='.resnet-bench-cache' --exclude=cifar --exclude=cjf . 2>/dev/null
cat "$SUM"
