//! DEVELOPMENT ONLY: receiver offsets from vertical image pairs, scored against the truth
//! (reports/learn.md). With the tag in a horizontal plane, two images stacked vertically over
//! it (a receiver or wall image at height a, its ceiling image at 2c − a) have ranges with
//! `(m_j − β)² − (m_i − β)² = K`, the same for every frame: a position-free vote for β.
//! `dev_vertical <scenario|dataset>`; env GT=1 uses the true path delays, WK the K bin (m²),
//! KTOL the pair tolerance (m²), DUMP=1 prints true and estimated paths of a few links.
mod common;
use rfloc_learn::features::PathSets;
use rfloc_learn::geometry::dist;
use rfloc_learn::linalg::{median, quantile};

/// Best offset β and pair constant K for receiver r: the pair (m_i, m_j) of one link through two
/// images stacked vertically over the tag plane satisfies (m_j − β)² − (m_i − β)² = K.
/// The path of link (i, r) that is the lower member of a pair matching (β, K) within `tol` (m²).
fn lower_of_pair(ps: &PathSets, i: usize, r: usize, beta: f64, k: f64, tol: f64) -> Option<f64> {
    let (nr, p) = (ps.n_receivers, ps.max_paths);
    let ms: Vec<f64> = (0..p)
        .map(|q| ps.range_m[(i * nr + r) * p + q])
        .filter(|v| v.is_finite())
        .collect();
    let mut best: Option<(f64, f64)> = None;
    for &a in &ms {
        for &b in &ms {
            if b > a {
                let e = ((b - beta).powi(2) - (a - beta).powi(2) - k).abs();
                if e < tol && best.is_none_or(|x| a < x.0) {
                    best = Some((a, e));
                }
            }
        }
    }
    best.map(|x| x.0)
}

fn vote(ps: &PathSets, r: usize, wk: f64) -> (f64, f64, usize) {
    let (n, nr, p) = (ps.n_frames, ps.n_receivers, ps.max_paths);
    let mut pairs: Vec<(f64, f64)> = Vec::new(); // (Δm, Σm)
    let mut firsts = Vec::new();
    for i in (0..n).step_by((n / 1500).max(1)) {
        let ms: Vec<f64> = (0..p)
            .map(|k| ps.range_m[(i * nr + r) * p + k])
            .filter(|v| v.is_finite())
            .collect();
        if let Some(f) = ms.iter().copied().reduce(f64::min) {
            firsts.push(f);
        }
        for a in 0..ms.len() {
            for b in 0..ms.len() {
                if ms[b] > ms[a] + 0.3 && ms[b] < ms[a] + 12.0 {
                    pairs.push((ms[b] - ms[a], ms[b] + ms[a]));
                }
            }
        }
    }
    let mmin = quantile(&firsts, 0.005);
    let mut best = (f64::NAN, f64::NAN, 0usize);
    let nb = 400usize;
    let mut hist = vec![0usize; nb];
    let mut beta = mmin - 20.0;
    while beta <= mmin {
        hist.iter_mut().for_each(|h| *h = 0);
        for &(d, s) in &pairs {
            let k = d * (s - 2.0 * beta);
            let bi = (k / wk).floor();
            if bi >= 0.0 && (bi as usize) < nb {
                hist[bi as usize] += 1;
            }
        }
        for b in 1..nb - 1 {
            let c = hist[b - 1] + hist[b] + hist[b + 1];
            if c > best.2 {
                best = (beta, (b as f64 + 0.5) * wk, c);
            }
        }
        beta += 0.02;
    }
    best
}

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let ds = common::load(&src);
    // GT=1: the true path delays (perfect super-resolution) instead of dsp's
    let ps = common::paths(&ds);
    let (n, nr) = (ps.n_frames, ps.n_receivers);
    let t = ds.truth.positions.as_ref().unwrap();
    let pos: Vec<[f64; 3]> = (0..n).map(|i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]]).collect();
    let rxs = ds.meta.receiver_positions().unwrap();
    let wk: f64 = std::env::var("WK")
        .map(|v| v.parse().unwrap())
        .unwrap_or(1.0);
    let mut betas = vec![0.0; nr];
    let mut ks = vec![0.0; nr];
    for r in 0..nr {
        let res: Vec<f64> = (0..n)
            .map(|i| ps.first_m[i * nr + r] - dist(&pos[i], &rxs[r]))
            .filter(|v| v.is_finite())
            .collect();
        let lo = quantile(&res, 0.2);
        let btrue = median(
            &res.iter()
                .copied()
                .filter(|v| *v < lo + 0.5)
                .collect::<Vec<_>>(),
        );
        let t0 = std::time::Instant::now();
        let (b, k, c) = vote(&ps, r, wk);
        betas[r] = b;
        ks[r] = k;
        let a = rxs[r][2] - 1.2;
        println!("rx{r}: vote β {b:.3} (true {btrue:.3}, err {:+.3}) K {k:.1} support {c}; K_LC(c=6.8) {:.1} K_LF {:.1} ({:.2}s)",
            b - btrue, (2.0 * 6.8 - a).powi(2) - a * a, (2.4 + a).powi(2) - a * a, t0.elapsed().as_secs_f64());
    }
    if std::env::var("DUMP").is_ok() {
        let d = ds.truth.paths_delay_s.as_ref().unwrap();
        let g = ds.truth.paths_gain.as_ref().unwrap();
        let p = ps.max_paths;
        let mut cnt = 0;
        for i in (0..n).step_by(97) {
            for r in 0..nr {
                let res: Vec<f64> = (0..n)
                    .map(|i| ps.first_m[i * nr + r] - dist(&pos[i], &rxs[r]))
                    .filter(|v| v.is_finite())
                    .collect();
                let lo = quantile(&res, 0.2);
                let bt = median(
                    &res.iter()
                        .copied()
                        .filter(|v| *v < lo + 0.5)
                        .collect::<Vec<_>>(),
                );
                let l = dist(&pos[i], &rxs[r]);
                let mut tr: Vec<(f64, f64)> = (0..d.dim().2)
                    .filter(|&k| d[[i, r, k]].is_finite())
                    .map(|k| {
                        (
                            d[[i, r, k]] * 299_792_458.0 - l,
                            g[[i, r, k]].norm_sqr() as f64,
                        )
                    })
                    .collect();
                let pm = tr.iter().map(|x| x.1).fold(0.0, f64::max);
                tr.retain(|x| x.1 > pm * 1e-2);
                tr.sort_by(|a, b| a.0.total_cmp(&b.0));
                let est: Vec<String> = (0..p)
                    .filter(|&k| ps.range_m[(i * nr + r) * p + k].is_finite())
                    .map(|k| {
                        format!(
                            "{:.2}({:.0})",
                            ps.range_m[(i * nr + r) * p + k] - bt - l,
                            ps.power_db[(i * nr + r) * p + k]
                        )
                    })
                    .collect();
                println!(
                    "f{i} rx{r} d={l:.1}\n  true {}\n  est  {}",
                    tr.iter()
                        .take(8)
                        .map(|x| format!("{:.2}({:.0})", x.0, 10.0 * (x.1 / pm).log10()))
                        .collect::<Vec<_>>()
                        .join(" "),
                    est.join(" ")
                );
            }
            cnt += 1;
            if cnt > 3 {
                break;
            }
        }
    }
    // LoS classification by pairs: the lower member of a pair matching (β, K) of its receiver
    let tol: f64 = std::env::var("KTOL")
        .map(|v| v.parse().unwrap())
        .unwrap_or(2.0);
    let (mut tp, mut fp) = (0, 0);
    for i in 0..n {
        for r in 0..nr {
            if let Some(v) = lower_of_pair(&ps, i, r, betas[r], ks[r], tol) {
                if (v - betas[r] - dist(&pos[i], &rxs[r])).abs() < 0.15 {
                    tp += 1
                } else {
                    fp += 1
                }
            }
        }
    }
    println!("pair-classified LoS links (KTOL {tol} m²): {} ({} within 15 cm of the true LoS range, {} not)", tp + fp, tp, fp);
}
