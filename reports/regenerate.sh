#!/usr/bin/env bash
# Regenerates every committed report from scratch (release build). Run from anywhere:
#   bash reports/regenerate.sh
# Simulated datasets and models go to out/ (not committed); reports to reports/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin rfloc
rfloc=target/release/rfloc

# The main job and the bundled scenarios with synchronized receivers. (Training does not yet
# support a single receiver or unsynchronized receivers — single-receiver, office,
# factory-a-walks-async — and says so with a typed error; their rows come back with that support.)
$rfloc demo
for s in warehouse-nlos; do
  $rfloc report "$s" --out "reports/$s" --work "out/$s"
done

# The independent ray-traced halls (../shared), when present.
shared=../shared/datasets
if [ -d "$shared" ]; then
  for d in factory-a-walks-sync; do
    $rfloc report "$shared/$d" --out "reports/$d" --work "out/$d"
  done
else
  echo "skipped the ray-traced datasets: $shared not found" >&2
fi

# Component reports.
cargo run --release --locked -p rfloc-channel --example crosscheck
