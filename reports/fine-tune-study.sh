#!/usr/bin/env bash
# Measures `rfloc anchor --fine-tune` against plain anchoring with the same labels
# (reports/learn.md, "Fine-tuning with labels"). Run from the repository root:
#   bash reports/fine-tune-study.sh DATASET_OR_SCENARIO [K ...]      (default K: 20 10 5)
# Trains one label-free model (tracks 0–6 for training, 7 held out by `rfloc train` itself),
# then for each K and label seed 1–3: draws K labels from tracks 0–6, anchors a copy of the
# model with them, and fine-tunes another copy with them; both are located per frame and over
# the track, and scored on the held-out track 7 in the absolute frame (CEP50/CE95/RMSE, m).
# Each of the two is also anchored with `--warp` (the labels' residual warp, which moves tracked
# positions only) and scored over the track.
# About 80 s per (K, seed) on 2 cores. A scenario name is simulated first (seed 1).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin rfloc >/dev/null
B=target/release/rfloc
src=$1; shift
ks=${*:-20 10 5}
work=out/fine-tune/$(basename "$src")
mkdir -p "$work"
if [ -d "$src" ]; then data=$src; else data=$work/dataset; [ -d "$data" ] || $B simulate "$src" --out "$data" --seed 1 >/dev/null; fi
[ -f "$work/model/model.json" ] || $B train "$data" --out "$work/model" >/dev/null
score() { $B eval "$1" --truth "$data" --tracks 7 | awk '/^(CEP50|CE95|RMSE)/ {printf "%s/", $2}'; }
echo "| K | seed | anchored per frame | anchored tracked | anchored + warp tracked | fine-tuned per frame | fine-tuned tracked | fine-tuned + warp tracked | labels held fixed |"
echo "|---|---|---|---|---|---|---|---|---|"
for k in $ks; do for s in 1 2 3; do
  l=$work/labels_${k}_$s.csv
  $B labels "$data" --k "$k" --seed "$s" --tracks 0,1,2,3,4,5,6 --out "$l" >/dev/null 2>&1
  for v in plain fine; do
    rm -rf "$work/$v"; cp -r "$work/model" "$work/$v"
    if [ $v = fine ]; then
      $B anchor "$work/$v" --dataset "$data" --labels "$l" --fine-tune >"$work/$v.log" 2>&1 || { echo "| $k | $s | fine-tuning refused: $(tail -1 "$work/$v.log") |"; continue 2; }
    else
      $B anchor "$work/$v" --dataset "$data" --labels "$l" >/dev/null
    fi
    $B locate "$work/$v" --dataset "$data" --out "$work/$v.csv" >/dev/null
    $B locate "$work/$v" --dataset "$data" --out "$work/${v}_t.csv" --track >/dev/null
    # the same model re-anchored with the warp (a fine-tuned model is not retrained again)
    rm -rf "$work/${v}_w"; cp -r "$work/$v" "$work/${v}_w"
    $B anchor "$work/${v}_w" --dataset "$data" --labels "$l" --warp >/dev/null
    $B locate "$work/${v}_w" --dataset "$data" --out "$work/${v}_wt.csv" --track >/dev/null
  done
  echo "| $k | $s | $(score $work/plain.csv) | $(score $work/plain_t.csv) | $(score $work/plain_wt.csv) | $(score $work/fine.csv) | $(score $work/fine_t.csv) | $(score $work/fine_wt.csv) | $(sed -n 's/^fine-tuned: \([0-9]*\) labels.*/\1/p' "$work/fine.log") |"
done; done
