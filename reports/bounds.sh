#!/usr/bin/env bash
# The position error bounds of reports/bounds.md (about 17 minutes on 2 cores once built; 789 s in the 17th session before the rows of walls). Run from anywhere:
#   bash reports/bounds.sh
# Prints one markdown row per case: the CEP50 / CE95 an efficient estimator could reach under the
# bound, per frame and after the product's smoother (`rfloc crlb … --track`), in cm.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin rfloc
rfloc=target/release/rfloc
out=out/bounds
mkdir -p "$out"

# A scenario without its dense multipath: the same TOML with [diffuse] paths = 0.
no_dense() {
  grep -q '^paths = ' "scenarios/$1.toml"
  sed 's/^paths = [0-9]*/paths = 0/' "scenarios/$1.toml" > "$out/$1-no-dense.toml"
  echo "$out/$1-no-dense.toml"
}

row() { # label, then rfloc crlb arguments
  local label=$1; shift
  local text
  text=$($rfloc crlb "$@" --track --out "$out/peb.csv")
  echo "$text" | awk -v label="$label" '
    /^an efficient estimator/ { gsub(/,/, ""); f50 = $5 * 100; f95 = $8 * 100 }
    /^after the smoother/ { gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "CEP50") t50 = $(i + 1) * 100; if ($i == "CE95") t95 = $(i + 1) * 100 } }
    END { printf "| %s | %.1f / %.1f | %.1f / %.1f |\n", label, f50, f95, t50, t95 }'
}

map_row() { # the same with the map unknown too: label, map model (anchors|walls), rfloc crlb arguments
  local label=$1 model=$2; shift 2
  local text
  text=$($rfloc crlb "$@" --map-unknown "$model" --draws 32 --track --out "$out/peb.csv")
  echo "$text" | awk -v label="$label" '
    function grab(line, key,   i, n, f) { n = split(line, f, " "); for (i = 1; i < n; i++) if (f[i] == key) { gsub(/,/, "", f[i + 1]); return f[i + 1] * 100 } }
    /^with the map unknown too \(/ { f50 = grab($0, "CEP50"); f95 = grab($0, "CE95") }
    /^with the map unknown too, after the smoother/ { t50 = grab($0, "CEP50"); t95 = grab($0, "CE95") }
    END { printf "| %s | %.1f / %.1f | %.1f / %.1f |\n", label, f50, f95, t50, t95 }'
}

shared=../shared/datasets
echo "| case | per frame, CEP50 / CE95 cm | after the smoother, CEP50 / CE95 cm |"
echo "|---|---|---|"
row "factory-hall, line of sight alone" factory-hall --seed 1
row "factory-hall, gains unknown" factory-hall --seed 1 --interfering
row "factory-hall, amplitudes known" factory-hall --seed 1 --interfering --known-amplitudes
fh=$(no_dense factory-hall)
row "factory-hall without dense multipath, gains unknown" "$fh" --seed 1 --interfering
row "factory-hall without dense multipath, amplitudes known" "$fh" --seed 1 --interfering --known-amplitudes
row "factory-hall, gains and receiver clocks unknown" factory-hall --seed 1 --interfering --unsynchronized
map_row "factory-hall, gains unknown, map of free anchors unknown too" anchors factory-hall --seed 1 --interfering
map_row "factory-hall, amplitudes known, map of free anchors unknown too" anchors factory-hall --seed 1 --interfering --known-amplitudes
map_row "factory-hall, gains unknown, map of walls unknown too" walls factory-hall --seed 1 --interfering
map_row "factory-hall, amplitudes known, map of walls unknown too" walls factory-hall --seed 1 --interfering --known-amplitudes
if [ -d "$shared" ]; then
  fa=$(no_dense factory-a)
  row "factory-a-walks-sync, gains unknown" "$fa" --seed 1 --interfering --at "$shared/factory-a-walks-sync"
  row "factory-a-walks-sync, amplitudes known" "$fa" --seed 1 --interfering --known-amplitudes --at "$shared/factory-a-walks-sync"
  map_row "factory-a-walks-sync, gains unknown, map of free anchors unknown too" anchors "$fa" --seed 1 --interfering --at "$shared/factory-a-walks-sync"
  map_row "factory-a-walks-sync, amplitudes known, map of free anchors unknown too" anchors "$fa" --seed 1 --interfering --known-amplitudes --at "$shared/factory-a-walks-sync"
  map_row "factory-a-walks-sync, gains unknown, map of walls unknown too" walls "$fa" --seed 1 --interfering --at "$shared/factory-a-walks-sync"
  map_row "factory-a-walks-sync, amplitudes known, map of walls unknown too" walls "$fa" --seed 1 --interfering --known-amplitudes --at "$shared/factory-a-walks-sync"
  row "factory-a-walks-async, gains and clocks unknown" "$fa" --seed 1 --interfering --at "$shared/factory-a-walks-async"
  row "factory-a-walks-async, amplitudes known, clocks unknown" "$fa" --seed 1 --interfering --known-amplitudes --at "$shared/factory-a-walks-async"
else
  echo "skipped the ray-traced datasets: $shared not found" >&2
fi
row "single-receiver, gains unknown" single-receiver --seed 1 --frames 2400 --interfering
row "single-receiver, amplitudes known" single-receiver --seed 1 --frames 2400 --interfering --known-amplitudes
map_row "single-receiver, amplitudes known, map of free anchors unknown too" anchors single-receiver --seed 1 --frames 2400 --interfering --known-amplitudes
map_row "single-receiver, amplitudes known, map of walls unknown too" walls single-receiver --seed 1 --frames 2400 --interfering --known-amplitudes
row "warehouse-nlos, gains unknown" warehouse-nlos --seed 1 --frames 2400 --interfering
row "warehouse-nlos, amplitudes known" warehouse-nlos --seed 1 --frames 2400 --interfering --known-amplitudes
