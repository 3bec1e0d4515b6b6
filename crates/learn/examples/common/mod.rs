//! Shared by the development examples (ground truth is read here, never in the product path).
// each example uses a part of this module
#![allow(dead_code)]
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rfloc_channel::scenario::{bundled, Scenario};
use rfloc_csi::dataset::Dataset;
use rfloc_learn::align::{fit_isometry, Isometry};
use rfloc_learn::features::PathSets;
use rfloc_learn::features::{extract_paths, PathOptions};
use rfloc_learn::geometry::C;
use rfloc_learn::Model;

/// Path sets from the dataset's TRUE path delays (the `p` strongest within 30 dB), with unknown
/// receiver offsets (0–40 ns, seeded) and Gaussian range noise added: the learning problem with
/// perfect super-resolution.
pub fn gt_paths(ds: &Dataset, p: usize, noise_m: f64) -> PathSets {
    let d: &Array3<f64> = ds.truth.paths_delay_s.as_ref().unwrap();
    let g = ds.truth.paths_gain.as_ref().unwrap();
    let (n, r, q) = d.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let off: Vec<f64> = (0..r).map(|_| rng.random_range(0.0..40e-9)).collect();
    let nd = Normal::new(0.0, noise_m).unwrap();
    let mut ps = PathSets::empty(n, r, p);
    for i in 0..n {
        for j in 0..r {
            let mut v: Vec<(f64, f64)> = (0..q)
                .filter(|&k| d[[i, j, k]].is_finite())
                .map(|k| (d[[i, j, k]], g[[i, j, k]].norm_sqr() as f64))
                .collect();
            let pm = v.iter().map(|x| x.1).fold(0.0, f64::max).max(1e-30);
            v.retain(|x| x.1 > pm * 1e-3);
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
            v.truncate(p);
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (k, (t, pw)) in v.iter().enumerate() {
                ps.range_m[(i * r + j) * p + k] = (t + off[j]) * C + nd.sample(&mut rng);
                ps.power_db[(i * r + j) * p + k] = 10.0 * (pw / pm).log10();
            }
            if let Some(f) = v.first() {
                ps.first_m[i * r + j] = ps.range_m[(i * r + j) * p];
                let _ = f;
            }
        }
    }
    ps
}

/// The best isometry (reflection allowed) of `a` onto the truth `b` with weights `w`, and the
/// horizontal errors after it (frames with zero weight left out).
pub fn rigid_fit(a: &[[f64; 3]], b: &[[f64; 3]], w: &[f64]) -> (Isometry, Vec<f64>) {
    let iso = fit_isometry(a, b, w, true);
    let errs = a
        .iter()
        .zip(b)
        .zip(w)
        .filter(|(_, &wi)| wi > 0.0)
        .map(|((x, y), _)| {
            let p = iso.apply(x);
            ((p[0] - y[0]).powi(2) + (p[1] - y[1]).powi(2)).sqrt()
        })
        .collect();
    (iso, errs)
}

/// A bundled scenario by name (simulated, seed 1) or a dataset directory.
pub fn load(src: &str) -> Dataset {
    match bundled(src) {
        Some(t) => rfloc_channel::simulate(&Scenario::from_toml_str(t).unwrap(), 1, None).unwrap(),
        None => Dataset::read(std::path::Path::new(src)).unwrap(),
    }
}

/// dsp's path sets (the product path), or with env `GT=1` the true delays ([`gt_paths`]: 8 per
/// link, 1 cm noise).
pub fn paths(ds: &Dataset) -> PathSets {
    if std::env::var("GT").is_ok() {
        gt_paths(ds, 8, 0.01)
    } else {
        extract_paths(ds, &PathOptions::default(), &|_| {}).unwrap()
    }
}

/// CEP50 and CE95 (m, horizontal) of `p` against the truth `t` after the best isometry.
pub fn score(p: &[[f64; 3]], t: &[[f64; 3]]) -> (f64, f64) {
    let e = rigid_fit(p, t, &vec![1.0; p.len()]).1;
    (
        rfloc_learn::linalg::quantile(&e, 0.5),
        rfloc_learn::linalg::quantile(&e, 0.95),
    )
}

/// The horizontal bounding box `(min, max)` of some points (m).
pub fn xy_box(points: &[[f64; 3]]) -> ([f64; 2], [f64; 2]) {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for r in points {
        for a in 0..2 {
            lo[a] = lo[a].min(r[a]);
            hi[a] = hi[a].max(r[a]);
        }
    }
    (lo, hi)
}

/// The frames of the model's held-out tracks and their true positions.
pub fn held_out(ds: &Dataset, model: &Model) -> (Vec<usize>, Vec<[f64; 3]>) {
    let t = ds.truth.positions.as_ref().expect("positions.npy");
    let held = &model.meta.metrics.holdout_tracks;
    let test: Vec<usize> = (0..ds.n_frames())
        .filter(|&i| held.contains(&ds.track_of(i)))
        .collect();
    let truth = test
        .iter()
        .map(|&i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]])
        .collect();
    (test, truth)
}

/// The TRUE first arrival's range of link (frame `i`, receiver `r`), m, without receiver offset
/// (the earliest finite delay of `paths_delay_s.npy`; infinite when the link has none).
pub fn true_first_m(ds: &Dataset, i: usize, r: usize) -> f64 {
    let d = ds.truth.paths_delay_s.as_ref().expect("paths_delay_s.npy");
    (0..d.dim().2)
        .map(|k| d[[i, r, k]])
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min)
        * C
}

/// Receiver `r`'s offset (m) in the path sets `ps`, from the true positions: the median of
/// `first − |x − p_r|` over its lowest residuals (within 0.5 m of their 20th percentile),
/// i.e. over links whose first path is the direct one. Also returns all residuals.
pub fn los_offset(ps: &PathSets, pos: &[[f64; 3]], rx: &[f64; 3], r: usize) -> (f64, Vec<f64>) {
    let nr = ps.n_receivers;
    let res: Vec<f64> = (0..ps.n_frames)
        .map(|i| ps.first_m[i * nr + r] - rfloc_learn::geometry::dist(&pos[i], rx))
        .filter(|v| v.is_finite())
        .collect();
    let lo = rfloc_learn::linalg::quantile(&res, 0.2);
    let off = rfloc_learn::linalg::median(
        &res.iter()
            .copied()
            .filter(|v| *v < lo + 0.5)
            .collect::<Vec<_>>(),
    );
    (off, res)
}
