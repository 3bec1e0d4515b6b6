//! DEVELOPMENT ONLY: how far a *CSI-domain* position solve on a correct map goes, against the
//! path-domain solve the product uses (reports/learn.md, "The map inside the per-link fit").
//!
//! Usage: `dev_csifit <scenario or dataset> [mirrors]`; env `STEP` = every STEP-th frame (10),
//! `WINDOW=w` = the product's snapshot window set to w frames per side (0 = one frame; unset =
//! the product's default), `NUIS`, `RIDGE`, `SYNTH`, `ZTRUE`, `PROFILE` (see below).
//! The map comes from the TRUTH: true receivers, and mirror anchors found by RANSAC on the true
//! path delays at the true positions. Each frame is then solved from its true position
//! ("local"), two ways:
//! - path domain: dsp's path set matched to the anchors (`refine::refine_frame`, the product's);
//! - CSI domain: the tones themselves, `min_x Σ_r ‖P⊥(x) h_r‖² / ‖h_r‖²`, where `P⊥(x)` projects
//!   out the columns `exp(−j2π f_k τ_{r,a}(x))`, `τ = (|x − v_{r,a}| + β_r) / c`, i.e. free complex
//!   gains per anchor (variable projection), by a coarse-to-fine grid.
mod common;
use num_complex::Complex64;
use rayon::prelude::*;
use rfloc_learn::anchors::{find_anchors, mark_los, AnchorSearch};
use rfloc_learn::features::{extract_paths, PathOptions, PathSets};
use rfloc_learn::geometry::{dist, C};
use rfloc_learn::linalg::{median, quantile};
use rfloc_learn::refine::{refine_frame, MapView};

/// `‖P⊥ h‖² / ‖h‖²` for delays `tau` (s) on tones `f` (Hz), by the normal equations with a tiny
/// ridge (anchors closer than the resolution make `AᴴA` near-singular).
fn ridge() -> f64 {
    static R: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *R.get_or_init(|| {
        std::env::var("RIDGE")
            .ok()
            .map_or(1e-6, |v| v.parse().unwrap())
    })
}

fn residual(h: &[Complex64], f: &[f64], tau: &[f64]) -> f64 {
    let (k, m) = (f.len(), tau.len());
    let mut a = vec![Complex64::new(0.0, 0.0); k * m];
    for (j, t) in tau.iter().enumerate() {
        for (i, fi) in f.iter().enumerate() {
            a[i * m + j] = Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * fi * t);
        }
    }
    let mut g = vec![Complex64::new(0.0, 0.0); m * m];
    let mut b = vec![Complex64::new(0.0, 0.0); m];
    for i in 0..k {
        for p in 0..m {
            let ap = a[i * m + p].conj();
            b[p] += ap * h[i];
            for q in 0..m {
                g[p * m + q] += ap * a[i * m + q];
            }
        }
    }
    for p in 0..m {
        g[p * m + p] += Complex64::new(ridge() * k as f64, 0.0);
    }
    // Gauss–Jordan on the Hermitian system
    let mut x = b.clone();
    for c in 0..m {
        let piv = g[c * m + c];
        for q in 0..m {
            g[c * m + q] /= piv;
        }
        x[c] /= piv;
        for r in 0..m {
            if r != c {
                let fct = g[r * m + c];
                for q in 0..m {
                    let v = g[c * m + q];
                    g[r * m + q] -= fct * v;
                }
                let v = x[c];
                x[r] -= fct * v;
            }
        }
    }
    let (mut e, mut hh) = (0.0, 0.0);
    for i in 0..k {
        let mut y = h[i];
        for p in 0..m {
            y -= a[i * m + p] * x[p];
        }
        e += y.norm_sqr();
        hh += h[i].norm_sqr();
    }
    e / hh.max(1e-300)
}

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let mirrors: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(7);
    let step: usize = std::env::var("STEP")
        .ok()
        .map_or(10, |v| v.parse().unwrap());
    let ds = common::load(&src);
    let gt = common::gt_paths(&ds, 12, 0.0);
    // WINDOW=w: the product's snapshot window set to w frames per side (at the dataset's median
    // frame interval); unset: the product's default
    let mut popts = PathOptions::default();
    if let Ok(w) = std::env::var("WINDOW") {
        let dt: Vec<f64> = ds
            .timestamps
            .windows(2)
            .into_iter()
            .map(|p| p[1] - p[0])
            .filter(|v| *v > 0.0)
            .collect();
        popts.snapshot_window_s = w.parse::<f64>().unwrap() * median(&dt);
    }
    let dsp = extract_paths(&ds, &popts, &|_| {}).unwrap();
    let (n, nr) = (gt.n_frames, gt.n_receivers);
    let t = ds.truth.positions.as_ref().unwrap();
    let pos: Vec<[f64; 3]> = (0..n).map(|i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]]).collect();
    let rxs = ds.meta.receiver_positions().unwrap();
    let zmean = pos.iter().map(|x| x[2]).sum::<f64>() / n as f64;
    let ztrue = std::env::var("ZTRUE").is_ok();
    let per = 1 + mirrors;
    let mut slots = vec![[0.0; 3]; nr * per];
    let mut valid = vec![false; nr * per];
    let offset_of = |ps: &PathSets, r: usize| common::los_offset(ps, &pos, &rxs[r], r).0;
    let mut offs_dsp = vec![0.0; nr];
    for r in 0..nr {
        let og = offset_of(&gt, r);
        offs_dsp[r] = offset_of(&dsp, r);
        slots[r * per] = rxs[r];
        valid[r * per] = true;
        let mut ex = mark_los(&gt, r, &pos, &rxs[r], og, 0.02);
        let s = AnchorSearch {
            per_receiver: mirrors,
            tol_m: 0.02,
            ..Default::default()
        };
        for (k, a) in find_anchors(&gt, r, &pos, og, &mut ex, &s)
            .into_iter()
            .enumerate()
        {
            slots[r * per + 1 + k] = a.position;
            valid[r * per + 1 + k] = true;
            eprintln!("rx{r} anchor {k}: {:.2?} support {}", a.position, a.support);
        }
    }
    {
        // path quality against the truth (offsets: dsp's own, from the true positions)
        let (mut nlos, mut any, mut firstok, mut tot) = (0, 0, 0, 0);
        let mut e_los = Vec::new();
        for i in 0..n {
            for r in 0..nr {
                let tf = common::true_first_m(&ds, i, r);
                tot += 1;
                let fm = dsp.first_m[i * nr + r] - offs_dsp[r];
                if (fm - tf).abs() < 0.1 {
                    firstok += 1;
                }
                let l = dist(&pos[i], &rxs[r]);
                if (tf - l).abs() >= 0.05 {
                    continue;
                }
                nlos += 1;
                e_los.push((fm - l).abs());
                if dsp.link(i, r).any(|m| (m - offs_dsp[r] - l).abs() < 0.1) {
                    any += 1;
                }
            }
        }
        println!(
            "paths: first within 10 cm of the true first on {:.1}% of links; LoS links {nlos}: a path within 10 cm of the LoS on {:.1}%, |first − LoS| q50 {:.3} q90 {:.3} m",
            100.0 * firstok as f64 / tot as f64,
            100.0 * any as f64 / nlos.max(1) as f64,
            quantile(&e_los, 0.5),
            quantile(&e_los, 0.9)
        );
    }
    let f = &ds.meta.subcarrier_offsets_hz;
    let h = |i: usize, r: usize| -> Vec<Complex64> {
        (0..f.len())
            .map(|k| {
                let v = ds.csi[[i, r, 0, k]];
                Complex64::new(v.re as f64, v.im as f64)
            })
            .collect()
    };
    let taus = |x: &[f64; 3], r: usize, beta: f64| -> Vec<f64> {
        (r * per..(r + 1) * per)
            .filter(|&a| valid[a])
            .map(|a| (dist(x, &slots[a]) + beta) / C)
            .collect()
    };
    // the CSI's own offset per receiver, from the TRUE path delays (all of them) on a few frames:
    // coarse 5 cm grid over ±3 m around dsp's, then 2 mm
    let frames: Vec<usize> = (0..n).step_by(step).collect();
    let dtrue = ds.truth.paths_delay_s.as_ref().unwrap();
    let mut offs = vec![0.0; nr];
    for r in 0..nr {
        let sub: Vec<usize> = frames.iter().copied().step_by(4).collect();
        let score = |b: f64| -> f64 {
            sub.iter()
                .map(|&i| {
                    let tt: Vec<f64> = (0..dtrue.dim().2)
                        .map(|k| dtrue[[i, r, k]])
                        .filter(|v| v.is_finite())
                        .map(|v| v + b / C)
                        .collect();
                    residual(&h(i, r), f, &tt)
                })
                .sum()
        };
        let mut best = (offs_dsp[r], f64::INFINITY);
        for (span, st) in [(60, 0.05), (30, 0.002)] {
            let c0 = best.0;
            for j in -span..=span {
                let b = c0 + st * j as f64;
                let c = score(b);
                if c < best.1 {
                    best = (b, c);
                }
            }
        }
        offs[r] = best.0;
        eprintln!(
            "rx{r}: offset dsp {:.3} m, CSI {:.3} m (mean residual {:.4})",
            offs_dsp[r],
            best.0,
            best.1 / sub.len() as f64
        );
    }
    // SYNTH=1: sanity check of the solver, the tones synthesized from the map itself at the
    // position the fit starts from (gains 1, 1/2, 1/3, …, no noise)
    let synth = std::env::var("SYNTH").is_ok();
    let h_meas = h;
    let h = |i: usize, r: usize| -> Vec<Complex64> {
        if !synth {
            return h_meas(i, r);
        }
        let z = if ztrue { pos[i][2] } else { zmean };
        let t = taus(&[pos[i][0], pos[i][1], z], r, offs[r]);
        f.iter()
            .map(|fk| {
                t.iter()
                    .enumerate()
                    .map(|(j, tj)| {
                        Complex64::from_polar(
                            1.0 / (j + 1) as f64,
                            -2.0 * std::f64::consts::PI * fk * tj,
                        )
                    })
                    .sum()
            })
            .collect()
    };
    let view = MapView {
        anchors: &slots,
        valid: &valid,
        per_receiver: per,
        offsets_m: &offs_dsp,
    };
    // NUIS=<m>: dsp's paths farther than this from every anchored range at the start join each
    // link as free nuisance columns (what the map does not hold: obstacles, diffuse clusters)
    let nuis: Option<f64> = std::env::var("NUIS").ok().map(|v| v.parse().unwrap());
    let nuisance = |i: usize, r: usize| -> Vec<f64> {
        let Some(sep) = nuis else { return vec![] };
        let pr: Vec<f64> = taus(&pos[i], r, offs[r]).iter().map(|t| t * C).collect();
        dsp.link(i, r)
            .filter(|m| m.is_finite() && pr.iter().all(|q| (q - m).abs() > sep))
            .map(|m| m / C)
            .collect()
    };
    let cost = |i: usize, x: &[f64; 3]| -> f64 {
        (0..nr)
            .map(|r| {
                let mut t = taus(x, r, offs[r]);
                t.extend(nuisance(i, r));
                residual(&h(i, r), f, &t)
            })
            .sum()
    };
    if std::env::var("PROFILE").is_ok() {
        let i = frames[frames.len() / 2];
        for r in 0..nr {
            let mut tt: Vec<f64> = (0..dtrue.dim().2)
                .map(|k| dtrue[[i, r, k]] * C + offs[r])
                .filter(|v| v.is_finite())
                .collect();
            tt.sort_by(f64::total_cmp);
            let mut pr: Vec<f64> = taus(&pos[i], r, offs[r]).iter().map(|t| t * C).collect();
            pr.sort_by(f64::total_cmp);
            println!(
                "rx{r} true ranges {:.2?}\n    anchors {:.2?}",
                &tt[..tt.len().min(12)],
                pr
            );
            println!("    rx {:?} tag {:?}", rxs[r], pos[i]);
        }
        for d in -10..=10 {
            let dd = d as f64 * 0.1;
            let y = [pos[i][0] + dd, pos[i][1], zmean];
            let y2 = [pos[i][0], pos[i][1] + dd, zmean];
            println!(
                "d {dd:+.1}: cost x-line {:.5} y-line {:.5}",
                cost(i, &y),
                cost(i, &y2)
            );
        }
    }
    let rows: Vec<(f64, f64, f64, f64)> = frames
        .par_iter()
        .map(|&i| {
            let z = if ztrue { pos[i][2] } else { zmean };
            let start = [pos[i][0], pos[i][1], z];
            let (xp, _, _) = refine_frame(&dsp, i, &view, start, 2, 0.1, 15);
            let mut x = start;
            for (span, st) in [(5, 0.1), (5, 0.02), (5, 0.004), (5, 0.001)] {
                let mut best = (x, f64::INFINITY);
                for a in -span..=span {
                    for b in -span..=span {
                        let y = [x[0] + a as f64 * st, x[1] + b as f64 * st, z];
                        let c = cost(i, &y);
                        if c < best.1 {
                            best = (y, c);
                        }
                    }
                }
                x = best.0;
            }
            let e = |y: &[f64; 3]| ((y[0] - pos[i][0]).powi(2) + (y[1] - pos[i][1]).powi(2)).sqrt();
            (e(&xp), e(&x), cost(i, &start), cost(i, &x))
        })
        .collect();
    let col = |k: usize| -> Vec<f64> {
        rows.iter()
            .map(|r| [r.0, r.1, r.2, r.3][k])
            .collect::<Vec<_>>()
    };
    let (ep, ec) = (col(0), col(1));
    println!(
        "{src}: {} frames, {} anchors: path domain (dsp) local CEP50 {:.3} CE95 {:.3} | CSI domain local CEP50 {:.3} CE95 {:.3} | residual at truth {:.4}, at the fit {:.4} (median, sum over receivers)",
        frames.len(),
        valid.iter().filter(|v| **v).count(),
        quantile(&ep, 0.5),
        quantile(&ep, 0.95),
        quantile(&ec, 0.5),
        quantile(&ec, 0.95),
        median(&col(2)),
        median(&col(3))
    );
}
