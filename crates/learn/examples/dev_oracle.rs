//! DEVELOPMENT ONLY: the accuracy ceiling of the multipath position solve (reports/learn.md).
//! Usage: `dev_oracle <scenario or dataset> [mirrors]`, env `CEIL` = the hall's ceiling height
//! (m, default 8) for the floor/ceiling row. Builds the map from
//! the TRUE positions (receivers from the metadata, mirror anchors found by RANSAC on the true
//! positions, offsets from the truth) and locates every frame by a global per-frame search.
//! `ASYNC=<dataset>`: also locate that dataset's frames (every 4th; the unsynchronized twin of
//! the first argument, same hall and receivers) with a free clock per receiver and frame
//! (`refine_unsynced`), on the map built from the first; and the first's own frames the same way.
//! With `VITERBI=1` also a whole-track search: a Viterbi pass over a grid of `CELL` m (default
//! 1) with the free-clock cost per frame and `MOVE` (default 2, in units of δ²) per cell moved.
mod common;
use rfloc_csi::dataset::Dataset;
use rfloc_learn::anchors::{find_anchors, mark_los, AnchorSearch};
use rfloc_learn::features::{extract_paths, PathOptions};
use rfloc_learn::geometry::dist;
use rfloc_learn::linalg::quantile;
use rfloc_learn::refine::{refine_frame, MapView};
use rfloc_learn::refine_unsynced::refine_frame_unsynced;

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let mirrors: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(7);
    let ds = common::load(&src);
    // GT=1: the true path delays (perfect super-resolution) instead of dsp's
    let ps = common::paths(&ds);
    let (n, nr, p) = (ps.n_frames, ps.n_receivers, ps.max_paths);
    let t = ds.truth.positions.as_ref().unwrap();
    let pos: Vec<[f64; 3]> = (0..n).map(|i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]]).collect();
    let rxs = ds.meta.receiver_positions().unwrap();
    let zmean = pos.iter().map(|x| x[2]).sum::<f64>() / n as f64;
    let mut slots = vec![[0.0; 3]; nr * (1 + mirrors)];
    let mut valid = vec![false; nr * (1 + mirrors)];
    let mut offs = vec![0.0; nr];
    let mut nlos = 0;
    for r in 0..nr {
        let (off, res) = common::los_offset(&ps, &pos, &rxs[r], r);
        offs[r] = off;
        nlos += res.iter().filter(|v| **v > offs[r] + 0.1).count();
        slots[r * (1 + mirrors)] = rxs[r];
        valid[r * (1 + mirrors)] = true;
        let mut ex = mark_los(&ps, r, &pos, &rxs[r], offs[r], 0.1);
        let s = AnchorSearch {
            per_receiver: mirrors,
            tol_m: 0.1,
            ..Default::default()
        };
        for (k, a) in find_anchors(&ps, r, &pos, offs[r], &mut ex, &s)
            .into_iter()
            .enumerate()
        {
            slots[r * (1 + mirrors) + 1 + k] = a.position;
            valid[r * (1 + mirrors) + 1 + k] = true;
            eprintln!("rx{r} anchor {k}: {:?} support {}", a.position, a.support);
        }
    }
    if ds.truth.paths_delay_s.is_some() {
        let (mut los, mut good, mut tot) = (0, 0, 0);
        let mut late = Vec::new();
        for i in 0..n {
            for r in 0..nr {
                let tf = common::true_first_m(&ds, i, r);
                let l = dist(&pos[i], &rxs[r]);
                tot += 1;
                if (tf - l).abs() < 0.05 {
                    los += 1;
                }
                let f = ps.first_m[i * nr + r] - offs[r];
                if (f - tf).abs() < 0.1 {
                    good += 1;
                }
                if f.is_finite() {
                    late.push(f - tf);
                }
            }
        }
        let (mut e_los, mut any_los, mut early_pw, mut nl) = (Vec::new(), 0, Vec::new(), 0);
        for i in 0..n {
            for r in 0..nr {
                let tf = common::true_first_m(&ds, i, r);
                let l = dist(&pos[i], &rxs[r]);
                if (tf - l).abs() >= 0.05 {
                    continue;
                }
                nl += 1;
                e_los.push(ps.first_m[i * nr + r] - offs[r] - l);
                let mut any = false;
                for k in 0..p {
                    let m = ps.range_m[(i * nr + r) * p + k] - offs[r];
                    if (m - l).abs() < 0.1 {
                        any = true;
                    }
                    if m < l - 0.1 {
                        early_pw.push(ps.power_db[(i * nr + r) * p + k]);
                    }
                }
                if any {
                    any_los += 1;
                }
            }
        }
        let abs: Vec<f64> = e_los
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v.abs())
            .collect();
        eprintln!("LoS links {nl}: |first-LoS| q50 {:.3} q68 {:.3} q90 {:.3}; some path within 10 cm of LoS on {:.1}%; {} early (>10cm) paths, power q50 {:.1} dB q90 {:.1}",
            quantile(&abs, 0.5), quantile(&abs, 0.68), quantile(&abs, 0.9), 100.0 * any_los as f64 / nl as f64, early_pw.len(), quantile(&early_pw, 0.5), quantile(&early_pw, 0.9));
        for thr in [-1.0, -3.0, -6.0, -10.0] {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for i in 0..n {
                for r in 0..nr {
                    let tf = common::true_first_m(&ds, i, r);
                    let is_los = (tf - dist(&pos[i], &rxs[r])).abs() < 0.05;
                    let f = ps.first_m[i * nr + r];
                    let fpw = (0..p)
                        .find(|&k| (ps.range_m[(i * nr + r) * p + k] - f).abs() < 1e-9)
                        .map(|k| ps.power_db[(i * nr + r) * p + k])
                        .unwrap_or(-99.0);
                    let pred = fpw >= thr;
                    match (pred, is_los) {
                        (true, true) => tp += 1,
                        (true, false) => fp += 1,
                        (false, true) => fn_ += 1,
                        _ => {}
                    }
                }
            }
            eprintln!("first path within {thr} dB of strongest as LoS: precision {:.3} recall {:.3} ({} links)", tp as f64 / (tp + fp) as f64, tp as f64 / (tp + fn_) as f64, tp + fp);
        }
        eprintln!("truth LoS on {:.1}% of links; dsp first path within 10 cm of the true first path on {:.1}%; dsp-true first: q10 {:.3} q50 {:.3} q90 {:.3}",
            100.0 * los as f64 / tot as f64, 100.0 * good as f64 / tot as f64, quantile(&late, 0.1), quantile(&late, 0.5), quantile(&late, 0.9));
    }
    eprintln!(
        "offsets {offs:?}; first path >10 cm late on {:.1}% of links",
        100.0 * nlos as f64 / (n * nr) as f64
    );
    let ceil: f64 = std::env::var("CEIL")
        .ok()
        .map(|v| v.parse().unwrap())
        .unwrap_or(8.0);
    {
        let mut sl = vec![[0.0; 3]; nr * 3];
        for r in 0..nr {
            sl[3 * r] = rxs[r];
            sl[3 * r + 1] = [rxs[r][0], rxs[r][1], -rxs[r][2]];
            sl[3 * r + 2] = [rxs[r][0], rxs[r][1], 2.0 * ceil - rxs[r][2]];
        }
        let va = vec![true; nr * 3];
        let view = MapView {
            anchors: &sl,
            valid: &va,
            per_receiver: 3,
            offsets_m: &offs,
        };
        let mut errs_w = Vec::new();
        let mut cnt = [0usize; 3];
        for i in 0..n {
            let (x, _, _) = refine_frame(&ps, i, &view, [pos[i][0], pos[i][1], zmean], 2, 0.1, 15);
            errs_w.push(((x[0] - pos[i][0]).powi(2) + (x[1] - pos[i][1]).powi(2)).sqrt());
            for r in 0..nr {
                for k in 0..3 {
                    let pr = dist(&pos[i], &sl[3 * r + k]) + offs[r];
                    if (0..p).any(|q| (ps.range_m[(i * nr + r) * p + q] - pr).abs() < 0.1) {
                        cnt[k] += 1;
                    }
                }
            }
        }
        println!("LoS+floor+ceiling (true): from truth CEP50 {:.3} CE95 {:.3}; links with a path within 10 cm of LoS/floor/ceiling: {:?} of {}",
            quantile(&errs_w, 0.5), quantile(&errs_w, 0.95), cnt, n * nr);
    }
    for use_mirrors in [false, true] {
        let v2: Vec<bool> = valid
            .iter()
            .enumerate()
            .map(|(a, &v)| v && (use_mirrors || a % (1 + mirrors) == 0))
            .collect();
        let view = MapView {
            anchors: &slots,
            valid: &v2,
            per_receiver: 1 + mirrors,
            offsets_m: &offs,
        };
        let (lo, hi) = common::xy_box(&rxs);
        let mut errs = Vec::new();
        let mut errs_w = Vec::new();
        for i in 0..n {
            let mut best = ([0.0; 3], f64::INFINITY);
            let mut gx = lo[0];
            while gx <= hi[0] {
                let mut gy = lo[1];
                while gy <= hi[1] {
                    let (x, c, _) = refine_frame(&ps, i, &view, [gx, gy, zmean], 2, 0.1, 15);
                    if c < best.1 {
                        best = (x, c);
                    }
                    gy += 2.5;
                }
                gx += 2.5;
            }
            let e = ((best.0[0] - pos[i][0]).powi(2) + (best.0[1] - pos[i][1]).powi(2)).sqrt();
            errs.push(e);
            // warm start from truth: local accuracy
            let (x, _, _) = refine_frame(&ps, i, &view, [pos[i][0], pos[i][1], zmean], 2, 0.1, 15);
            errs_w.push(((x[0] - pos[i][0]).powi(2) + (x[1] - pos[i][1]).powi(2)).sqrt());
        }
        println!(
            "mirrors={use_mirrors}: global CEP50 {:.3} CE95 {:.3} | from truth CEP50 {:.3} CE95 {:.3}",
            quantile(&errs, 0.5), quantile(&errs, 0.95), quantile(&errs_w, 0.5), quantile(&errs_w, 0.95)
        );
    }
    if let Ok(adir) = std::env::var("ASYNC") {
        let ads = Dataset::read(std::path::Path::new(&adir)).unwrap();
        let aps = extract_paths(&ads, &PathOptions::default(), &|_| {}).unwrap();
        let at = ads.truth.positions.as_ref().unwrap();
        let view = MapView {
            anchors: &slots,
            valid: &valid,
            per_receiver: 1 + mirrors,
            offsets_m: &offs,
        };
        let (lo, hi) = common::xy_box(&rxs);
        for (name, pset, truth) in [
            ("async twin", &aps, at),
            ("this dataset, clocks freed", &ps, t),
        ] {
            let (mut local, mut global, mut info) = (Vec::new(), Vec::new(), Vec::new());
            for i in (0..pset.n_frames).step_by(4) {
                let tr = [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]];
                let e = |x: [f64; 3]| ((x[0] - tr[0]).powi(2) + (x[1] - tr[1]).powi(2)).sqrt();
                let u =
                    refine_frame_unsynced(pset, i, &view, [tr[0], tr[1], zmean], 2, 0.1, 20, None);
                local.push(e(u.position));
                info.push(u.informative as f64);
                let mut best = (u.position, f64::INFINITY);
                let mut gx = lo[0];
                while gx <= hi[0] {
                    let mut gy = lo[1];
                    while gy <= hi[1] {
                        let g = refine_frame_unsynced(
                            pset,
                            i,
                            &view,
                            [gx, gy, zmean],
                            2,
                            0.1,
                            20,
                            None,
                        );
                        if g.cost < best.1 {
                            best = (g.position, g.cost);
                        }
                        gy += 2.5;
                    }
                    gx += 2.5;
                }
                global.push(e(best.0));
            }
            // follow each track: the first frame starts at the truth, every later one at the
            // previous solution
            let tids = if name == "async twin" {
                &ads.track_ids
            } else {
                &ds.track_ids
            };
            // pull: σ_r²/(2σ_m²) with σ_r = 0.1 m and a step of σ_m = 0.15 m between frames
            let pull: f64 = std::env::var("PULL")
                .ok()
                .map_or(0.22, |v| v.parse().unwrap());
            let mut follow = Vec::new();
            let mut prev: Option<(i32, [f64; 3])> = None;
            for i in 0..pset.n_frames {
                let tr = [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]];
                let tid = ds_track(tids, i);
                let (x0, pr) = match prev {
                    Some((k, x)) if k == tid => (x, Some((x, pull))),
                    _ => ([tr[0], tr[1], zmean], None),
                };
                let u = refine_frame_unsynced(pset, i, &view, x0, 2, 0.1, 20, pr);
                follow.push(
                    ((u.position[0] - tr[0]).powi(2) + (u.position[1] - tr[1]).powi(2)).sqrt(),
                );
                prev = Some((tid, u.position));
            }
            if std::env::var("VITERBI").is_ok() {
                let step: f64 = std::env::var("CELL").map_or(1.0, |v| v.parse().unwrap());
                let mv: f64 = std::env::var("MOVE").map_or(2.0, |v| v.parse().unwrap());
                let e = viterbi_async(pset, &view, tids, lo, hi, step, mv, zmean, truth);
                println!(
                    "free clocks, {name}: Viterbi over each track ({step} m cells, move {mv}): CEP50 {:.3} CE95 {:.3}",
                    quantile(&e.0, 0.5), quantile(&e.0, 0.95)
                );
                println!(
                    "free clocks, {name}: Viterbi cells refined locally: CEP50 {:.3} CE95 {:.3}",
                    quantile(&e.1, 0.5),
                    quantile(&e.1, 0.95)
                );
            }
            println!(
                "free clocks, {name}: following each track from its true start: CEP50 {:.3} CE95 {:.3} ({} frames)",
                quantile(&follow, 0.5), quantile(&follow, 0.95), follow.len()
            );
            println!(
                "free clocks, {name}: from truth CEP50 {:.3} CE95 {:.3} | grid start CEP50 {:.3} CE95 {:.3} | informative receivers per frame: median {:.0} ({} frames)",
                quantile(&local, 0.5), quantile(&local, 0.95), quantile(&global, 0.5), quantile(&global, 0.95), quantile(&info, 0.5), local.len()
            );
        }
    }
    let _ = p;
}

fn ds_track(t: &Option<ndarray::Array1<i32>>, i: usize) -> i32 {
    t.as_ref().map_or(0, |a| a[i])
}

/// The free-clock cost of frame `i` at `x` (in units of δ²): per receiver the best clock over
/// all path–anchor pairings, as `refine_unsynced` starts from.
fn free_clock_cost(
    ps: &rfloc_learn::features::PathSets,
    i: usize,
    map: &MapView,
    x: &[f64; 3],
) -> f64 {
    let (nr, p, m) = (ps.n_receivers, ps.max_paths, map.per_receiver);
    let d = 0.1f64;
    let rho = |e: f64| 0.5 * (1.0 + (e / d) * (e / d)).ln();
    let mut total = 0.0;
    for r in 0..nr {
        let obs: Vec<f64> = (0..p)
            .map(|k| ps.range_m[(i * nr + r) * p + k] - map.offsets_m[r])
            .filter(|v| v.is_finite())
            .collect();
        let pred: Vec<f64> = (r * m..(r + 1) * m)
            .filter(|&a| map.valid[a])
            .map(|a| dist(x, &map.anchors[a]))
            .collect();
        if obs.is_empty() || pred.is_empty() {
            continue;
        }
        let mut best = f64::INFINITY;
        for &o in &obs {
            for &q in &pred {
                let b = o - q;
                let c: f64 = obs
                    .iter()
                    .map(|&o2| {
                        rho(pred
                            .iter()
                            .map(|&q2| (o2 - b - q2).abs())
                            .fold(f64::INFINITY, f64::min))
                    })
                    .sum();
                best = best.min(c);
            }
        }
        total += best;
    }
    total
}

/// Viterbi over a grid of cells along each track: the per-frame free-clock cost plus `mv` per
/// cell moved (8-neighbourhood). Returns the horizontal errors of the decoded cells and of the
/// same cells refined locally (`refine_frame_unsynced`).
#[allow(clippy::too_many_arguments)]
fn viterbi_async(
    ps: &rfloc_learn::features::PathSets,
    map: &MapView,
    tids: &Option<ndarray::Array1<i32>>,
    lo: [f64; 2],
    hi: [f64; 2],
    step: f64,
    mv: f64,
    z: f64,
    truth: &ndarray::Array2<f64>,
) -> (Vec<f64>, Vec<f64>) {
    let nx = ((hi[0] - lo[0]) / step).ceil() as usize + 1;
    let ny = ((hi[1] - lo[1]) / step).ceil() as usize + 1;
    let cells: Vec<[f64; 3]> = (0..nx * ny)
        .map(|c| {
            [
                lo[0] + (c / ny) as f64 * step,
                lo[1] + (c % ny) as f64 * step,
                z,
            ]
        })
        .collect();
    let n = ps.n_frames;
    let (mut e_cell, mut e_ref) = (Vec::new(), Vec::new());
    let mut start = 0;
    while start < n {
        let tid = ds_track(tids, start);
        let mut end = start;
        while end < n && ds_track(tids, end) == tid {
            end += 1;
        }
        let len = end - start;
        let mut acc: Vec<f64> = cells
            .iter()
            .map(|x| free_clock_cost(ps, start, map, x))
            .collect();
        let mut back = vec![0u32; len * cells.len()];
        for t in 1..len {
            let cost: Vec<f64> = cells
                .iter()
                .map(|x| free_clock_cost(ps, start + t, map, x))
                .collect();
            let mut next = vec![f64::INFINITY; cells.len()];
            for c in 0..cells.len() {
                let (cx, cy) = ((c / ny) as i64, (c % ny) as i64);
                for dx in -1i64..=1 {
                    for dy in -1i64..=1 {
                        let (px, py) = (cx + dx, cy + dy);
                        if px < 0 || py < 0 || px >= nx as i64 || py >= ny as i64 {
                            continue;
                        }
                        let pc = (px as usize) * ny + py as usize;
                        let v = acc[pc] + mv * ((dx * dx + dy * dy) as f64).sqrt();
                        if v < next[c] {
                            next[c] = v;
                            back[t * cells.len() + c] = pc as u32;
                        }
                    }
                }
                next[c] += cost[c];
            }
            acc = next;
        }
        let mut c = (0..cells.len())
            .min_by(|&a, &b| acc[a].total_cmp(&acc[b]))
            .unwrap();
        let mut path = vec![0usize; len];
        for t in (0..len).rev() {
            path[t] = c;
            if t > 0 {
                c = back[t * cells.len() + c] as usize;
            }
        }
        for (t, &c) in path.iter().enumerate() {
            let i = start + t;
            let tr = [truth[[i, 0]], truth[[i, 1]]];
            let x = cells[c];
            e_cell.push(((x[0] - tr[0]).powi(2) + (x[1] - tr[1]).powi(2)).sqrt());
            let u = refine_frame_unsynced(ps, i, map, x, 2, 0.1, 20, None);
            e_ref.push(((u.position[0] - tr[0]).powi(2) + (u.position[1] - tr[1]).powi(2)).sqrt());
        }
        start = end;
    }
    (e_cell, e_ref)
}
