//! An ensemble of models trained from different seeds, located as one.
//!
//! Why: training is a chain of non-convex fits (multi-start self-calibration, RANSAC anchors,
//! Adam from seeded weights), and which minimum a seed ends in is partly luck. On the held-out
//! track of factory-hall, five seeds gave per-frame CEP50 0.915–1.061 m (seed 0, the single
//! model, was the worst). Part of each seed's error is its own; averaging cancels that part and
//! leaves the part the data force on every seed (`reports/learn.md`, "Ensemble of seeds").
//!
//! Each member learns its own frame (positions are defined up to an isometry), so members are
//! first moved into the first member's frame: the isometry that best maps a member's training
//! positions onto the first member's, fitted robustly (iteratively reweighted with Cauchy
//! weights, so frames where the two disagree by metres do not tilt the fit).
//!
//! Equations, per frame, with `p_k` the aligned positions of K members, `σ_k` their per-axis σ
//! and `f_k` their range-fit σ: `x̂ = (1/K) Σ p_k`, and with the members' spread per axis
//! `B = (1/(K·d)) Σ |p_k − x̂|²` (d horizontal axes)
//! `σ̂² = max((1/K) Σ σ_k² − B, (1/K) Σ f_k²)`.
//! Why: a member's error is a part shared by all seeds plus its own, `e_k = s + u_k`, and
//! `σ_k² ≈ s² + u²`. The mean keeps `s` and `u²/K`, and `B ≈ u²(K − 1)/K`, so
//! `s² + u²/K ≈ σ_k² − B`. The range-fit σ is a floor: the members fit the same observations,
//! so that noise does not average out. Measured (model frame, held-out track): the 95 % radii
//! of 5 members cover 98 % of the errors with this rule, 99 % with `σ̂² = (1/K) Σ σ_k²`.

use serde::{Deserialize, Serialize};

use crate::align::{fit_isometry, Isometry};
use crate::train::Located;

/// One extra member of an ensemble, as `model.json` lists it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EnsembleMember {
    /// Sub-directory of the artifact holding the member's own model (`member-1`, …).
    pub dir: String,
    /// From the member's frame into the first member's (the ensemble's) frame.
    pub to_reference: Isometry,
}

/// Whether `dir` is a member directory name this crate writes (`member-<n>`): a model file
/// must not send the loader elsewhere on disk.
pub fn valid_member_dir(dir: &str) -> bool {
    dir.strip_prefix("member-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Robust isometry (reflection allowed) mapping `pos` onto `reference`, pair by pair; pairs with
/// a non-finite coordinate are left out. `None` with fewer than three usable pairs.
pub fn align_to_reference(pos: &[[f64; 3]], reference: &[[f64; 3]]) -> Option<Isometry> {
    let (a, b): (Vec<[f64; 3]>, Vec<[f64; 3]>) = pos
        .iter()
        .zip(reference)
        .filter(|(p, q)| p.iter().chain(q.iter()).all(|v| v.is_finite()))
        .map(|(p, q)| (*p, *q))
        .unzip();
    if a.len() < 3 {
        return None;
    }
    let mut w = vec![1.0; a.len()];
    let mut iso = fit_isometry(&a, &b, &w, true);
    for _ in 0..6 {
        let r: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(p, q)| crate::geometry::dist(&iso.apply(p), q))
            .collect();
        let scale = 2.0 * crate::linalg::median(&r) + 1e-6;
        for (wi, ri) in w.iter_mut().zip(&r) {
            *wi = 1.0 / (1.0 + (ri / scale).powi(2));
        }
        iso = fit_isometry(&a, &b, &w, true);
    }
    Some(iso)
}

/// Moves one member's located frames into the reference frame.
pub fn to_reference(located: &mut [Located], iso: &Isometry, dims: usize) {
    for l in located {
        l.position = flat(iso.apply(&l.position), dims);
        l.encoder = flat(iso.apply(&l.encoder), dims);
    }
}

/// How far apart the members place the same training frames, once all are in one frame: a
/// label-free check of what training learned.
///
/// Why: the members differ only in their seeds, so where the recording determines the
/// geometry they agree, and where it does not they part ways. Measured on the training frames
/// of factory-hall, seed 0 (`reports/learn.md`, "The members' consensus as a second start"):
/// frames whose spread is under 0.2 m were 0.39 m CEP50 off for one member, frames over 1 m
/// 1.58 m; on warehouse-nlos, the collapsed model, every training frame's spread was over 1 m.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct MemberSpread {
    /// Members compared.
    pub members: usize,
    /// Median over the training frames of a frame's spread (m): the median horizontal distance
    /// of its members' positions from their coordinate-wise median.
    pub median_m: f64,
    /// 90th percentile of the same (m).
    pub p90_m: f64,
}

/// Each frame's spread (m): the median horizontal distance of its members' positions from
/// their coordinate-wise median, for members already moved into one frame (`aligned[k][i]`:
/// member k, frame i; every member the same frames in the same order). `None` for a frame where
/// a member has a non-finite position; empty with fewer than two members or unequal lengths.
pub fn frame_spreads(aligned: &[Vec<[f64; 3]>], dims: usize) -> Vec<Option<f64>> {
    let n = aligned.first().map_or(0, |m| m.len());
    if aligned.len() < 2 || aligned.iter().any(|m| m.len() != n) {
        return Vec::new();
    }
    let axes = dims.min(2);
    (0..n)
        .map(|i| {
            if !aligned.iter().all(|m| m[i].iter().all(|v| v.is_finite())) {
                return None;
            }
            let mut centre = [0.0; 3];
            for (a, c) in centre.iter_mut().enumerate().take(axes) {
                let v: Vec<f64> = aligned.iter().map(|m| m[i][a]).collect();
                *c = crate::linalg::median(&v);
            }
            let d: Vec<f64> = aligned
                .iter()
                .map(|m| {
                    (0..axes)
                        .map(|a| (m[i][a] - centre[a]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .collect();
            Some(crate::linalg::median(&d))
        })
        .collect()
}

/// [`MemberSpread`] of members' positions already moved into one frame ([`frame_spreads`]);
/// frames where a member has a non-finite position are left out. `None` with fewer than two
/// members or no frame.
pub fn member_spread(aligned: &[Vec<[f64; 3]>], dims: usize) -> Option<MemberSpread> {
    let spreads: Vec<f64> = frame_spreads(aligned, dims).into_iter().flatten().collect();
    if spreads.is_empty() {
        return None;
    }
    Some(MemberSpread {
        members: aligned.len(),
        median_m: crate::linalg::median(&spreads),
        p90_m: crate::linalg::quantile(&spreads, 0.9),
    })
}

/// A 2D model keeps z = 0 (an isometry between planar frames may carry rounding into z).
fn flat(mut p: [f64; 3], dims: usize) -> [f64; 3] {
    if dims == 2 {
        p[2] = 0.0;
    }
    p
}

/// Combines the members' located frames (all in the reference frame, same frames in the same
/// order) by the rule in the module docs.
pub fn combine(runs: &[Vec<Located>], dims: usize) -> Vec<Located> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let axes = dims.min(2) as f64;
    (0..first.len())
        .map(|n| {
            let ok: Vec<&Located> = runs
                .iter()
                .filter_map(|r| r.get(n))
                .filter(|l| l.position.iter().all(|v| v.is_finite()))
                .collect();
            if ok.is_empty() {
                return first[n];
            }
            let k = ok.len() as f64;
            let mean = |f: &dyn Fn(&Located) -> [f64; 3]| {
                let mut m = [0.0; 3];
                for l in &ok {
                    let v = f(l);
                    for a in 0..3 {
                        m[a] += v[a] / k;
                    }
                }
                m
            };
            let position = mean(&|l| l.position);
            let encoder = mean(&|l| l.encoder);
            let rms = |f: &dyn Fn(&Located) -> f64| {
                (ok.iter().map(|l| f(l).powi(2)).sum::<f64>() / k).sqrt()
            };
            let between = ok
                .iter()
                .map(|l| {
                    (0..3)
                        .map(|a| (l.position[a] - position[a]).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / (k * axes);
            let fit_sigma_m = rms(&|l| l.fit_sigma_m);
            Located {
                position,
                encoder,
                accuracy_m: (rms(&|l| l.accuracy_m).powi(2) - between)
                    .max(fit_sigma_m * fit_sigma_m)
                    .sqrt(),
                fit_sigma_m,
                basin_spread_m: rms(&|l| l.basin_spread_m),
                snapshots: ok.iter().map(|l| l.snapshots).max().unwrap_or(1),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_spread_is_the_median_distance_to_the_members_median() {
        // three members on 10 frames: two agree exactly, the third is 3 m off on frames 0–3
        let base: Vec<[f64; 3]> = (0..10).map(|i| [i as f64, 0.5 * i as f64, 0.0]).collect();
        let mut third = base.clone();
        for p in third.iter_mut().take(4) {
            p[0] += 3.0;
        }
        let s = member_spread(&[base.clone(), base.clone(), third], 2).unwrap();
        // every frame's median distance is 0 (two of three members sit on the median)
        assert_eq!((s.members, s.median_m, s.p90_m), (3, 0.0, 0.0));

        // two members 1 m apart on every frame, one 0.2 m off: the centre is the middle one
        let a: Vec<[f64; 3]> = base.iter().map(|p| [p[0] - 1.0, p[1], 0.0]).collect();
        let b: Vec<[f64; 3]> = base.iter().map(|p| [p[0] + 0.2, p[1], 0.0]).collect();
        let s = member_spread(&[a, base.clone(), b], 2).unwrap();
        assert!((s.median_m - 0.2).abs() < 1e-12, "{s:?}");

        // half the frames far apart: the 90th percentile sees them, the median not
        let mut far = base.clone();
        for p in far.iter_mut().skip(6) {
            p[1] += 4.0;
        }
        let mut far2 = base.clone();
        for p in far2.iter_mut().skip(6) {
            p[1] -= 4.0;
        }
        let s = member_spread(&[far, base.clone(), far2], 2).unwrap();
        assert_eq!(s.median_m, 0.0);
        assert!((s.p90_m - 4.0).abs() < 1e-12, "{s:?}");

        // a frame a member could not place is left out; too few members or frames: None
        let mut gap = base.clone();
        gap[0] = [f64::NAN; 3];
        assert!(member_spread(&[gap, base.clone()], 2).is_some());
        assert!(member_spread(&[base.clone()], 2).is_none());
        assert!(member_spread(&[Vec::new(), Vec::new()], 2).is_none());
        assert!(member_spread(&[base.clone(), base[..5].to_vec()], 2).is_none());
    }

    fn at(x: f64, y: f64, acc: f64) -> Located {
        Located {
            position: [x, y, 0.0],
            encoder: [x, y, 0.0],
            accuracy_m: acc,
            fit_sigma_m: acc / 2.0,
            basin_spread_m: 0.0,
            snapshots: 1,
        }
    }

    #[test]
    fn member_dirs_stay_inside_the_artifact() {
        assert!(valid_member_dir("member-1"));
        assert!(valid_member_dir("member-12"));
        for bad in [
            "member-",
            "member-1/..",
            "../member-1",
            "/tmp/x",
            "member-a",
            "m-1",
        ] {
            assert!(!valid_member_dir(bad), "{bad}");
        }
    }

    #[test]
    fn alignment_recovers_a_reflected_frame_despite_gross_outliers() {
        // reference walk, and a member's view of it: reflected, rotated, shifted; 20 % of its
        // frames in a wrong basin metres away
        let reference: Vec<[f64; 3]> = (0..200)
            .map(|i| {
                let t = i as f64 * 0.1;
                [10.0 * t.cos() + 0.3 * t, 6.0 * (1.7 * t).sin(), 0.0]
            })
            .collect();
        let (s, c) = 0.9f64.sin_cos();
        let member: Vec<[f64; 3]> = reference
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (x, y) = (p[0], -p[1]);
                let mut q = [c * x - s * y + 4.0, s * x + c * y - 7.0, 0.0];
                if i % 5 == 0 {
                    q[0] += 6.0;
                    q[1] -= 4.0;
                }
                q
            })
            .collect();
        let iso = align_to_reference(&member, &reference).unwrap();
        let errs: Vec<f64> = member
            .iter()
            .zip(&reference)
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, (p, q))| crate::geometry::dist(&flat(iso.apply(p), 2), q))
            .collect();
        let worst = errs.iter().cloned().fold(0.0, f64::max);
        assert!(worst < 0.05, "inliers misaligned by up to {worst} m");
        // a plain least-squares fit is pulled by the outliers
        let plain = fit_isometry(&member, &reference, &vec![1.0; member.len()], true);
        let plain_worst = member
            .iter()
            .zip(&reference)
            .enumerate()
            .filter(|(i, _)| i % 5 != 0)
            .map(|(_, (p, q))| crate::geometry::dist(&flat(plain.apply(p), 2), q))
            .fold(0.0, f64::max);
        assert!(plain_worst > 0.5, "{plain_worst}");
        assert!(align_to_reference(&member[..2], &reference[..2]).is_none());
    }

    #[test]
    fn combine_averages_and_removes_the_part_of_the_error_that_averages_out() {
        let runs = vec![
            vec![at(0.0, 0.0, 1.0), at(5.0, 5.0, 0.2), at(0.0, 0.0, 0.3)],
            vec![at(0.4, 0.0, 1.2), at(5.0, 5.0, 0.2), at(3.0, 0.0, 0.3)],
        ];
        let c = combine(&runs, 2);
        assert_eq!(c.len(), 3);
        assert!((c[0].position[0] - 0.2).abs() < 1e-12 && c[0].position[1].abs() < 1e-12);
        // mean σ² = (1 + 1.44)/2 = 1.22; spread (0.04 + 0.04)/(2·2) = 0.02
        assert!((c[0].accuracy_m - 1.2f64.sqrt()).abs() < 1e-12);
        // members that agree: σ is their common σ, not σ/√K (same observations)
        assert!((c[1].accuracy_m - 0.2).abs() < 1e-12);
        assert!((c[1].fit_sigma_m - 0.1).abs() < 1e-12);
        // members further apart than their σ explain: never below the range fit's σ
        assert!((c[2].accuracy_m - 0.15).abs() < 1e-12);
        // a member without a position does not poison the mean
        let runs = vec![vec![at(1.0, 1.0, 0.3)], vec![at(f64::NAN, 0.0, 0.3)]];
        assert_eq!(combine(&runs, 2)[0].position, [1.0, 1.0, 0.0]);
    }
}
