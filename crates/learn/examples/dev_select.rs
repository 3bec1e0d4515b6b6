//! DEVELOPMENT ONLY: does scoring a self-calibration by *all* paths (after finding its virtual
//! anchors) pick better geometries than its first-path cost? Runs single-start
//! self-calibrations with different seeds on the training frames, scores each both ways, and
//! prints the truth (rigid-fit CEP50 of the positions) beside them.
//! Usage: `dev_select <scenario or dataset> [seeds]`; `TRUTHCOST=1`: instead, the first-path
//! cost at the truth, refined from the truth, and at the shipped self-calibration. `GT=1`: on
//! the true path delays instead of dsp's.
mod common;
use rfloc_learn::anchors::{find_anchors, mark_los, AnchorSearch};
use rfloc_learn::geometry::{dist, Robust};
use rfloc_learn::linalg::quantile;
use rfloc_learn::selfcal::{refine, self_calibrate_tracks, Motion, SelfCalConfig};

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let seeds: u64 = std::env::args().nth(2).map_or(12, |s| s.parse().unwrap());
    let ds = common::load(&src);
    // GT=1: the true path delays (perfect super-resolution; unknown offsets, 1 cm noise)
    // GT=1: the true path delays (perfect super-resolution) instead of dsp's
    let ps = common::paths(&ds);
    let (n, nr, p) = (ps.n_frames, ps.n_receivers, ps.max_paths);
    let t = ds.truth.positions.as_ref().unwrap();
    let truth: Vec<[f64; 3]> = (0..n).map(|i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]]).collect();
    let ts = ds.timestamps.to_vec();
    let ks: Vec<i32> = (0..n).map(|i| ds.track_of(i)).collect();
    let motion = Motion {
        timestamps: &ts,
        track_ids: &ks,
        max_speed_mps: 2.0,
        weight: 1.0,
    };
    let observed = ps.range_m.iter().filter(|v| v.is_finite()).count();
    if std::env::var("TRUTHCOST").is_ok() {
        // Is the self-calibration's answer a *lower* cost than the truth's neighbourhood?
        let loss = Robust::NlosCauchy(0.1);
        let rxt = ds.meta.receiver_positions().unwrap();
        let ztag = truth.iter().map(|x| x[2]).sum::<f64>() / n as f64;
        let mut pos_t: Vec<[f64; 3]> = truth.iter().map(|x| [x[0], x[1], 0.0]).collect();
        let mut rx_t: Vec<[f64; 4]> = (0..nr)
            .map(|r| {
                let q = [rxt[r][0], rxt[r][1], rxt[r][2] - ztag];
                let res: Vec<f64> = (0..n)
                    .map(|i| ps.first_m[i * nr + r] - dist(&pos_t[i], &q))
                    .filter(|v| v.is_finite())
                    .collect();
                let lo = quantile(&res, 0.2);
                let low: Vec<f64> = res.iter().copied().filter(|v| *v < lo + 0.5).collect();
                [q[0], q[1], q[2], quantile(&low, 0.5)]
            })
            .collect();
        let c_truth = refine(
            &ps.first_m,
            nr,
            2,
            &mut rx_t.clone(),
            &mut pos_t.clone(),
            loss,
            0,
        );
        let c_local = refine(&ps.first_m, nr, 2, &mut rx_t, &mut pos_t, loss, 40);
        let e = common::rigid_fit(&pos_t, &truth, &vec![1.0; n]).1;
        println!("truth: cost {c_truth:.4}; refined from the truth: cost {c_local:.4}, CEP50 {:.3} m, heights {:?}", quantile(&e, 0.5), rx_t.iter().map(|r| (r[2] * 100.0).round() / 100.0).collect::<Vec<_>>());
        // the product's settings (24 starts)
        let cfg = SelfCalConfig::default();
        let cal = self_calibrate_tracks(&ps.first_m, nr, &cfg, Some(&motion)).unwrap();
        let mut rx_c: Vec<[f64; 4]> = (0..nr)
            .map(|r| {
                [
                    cal.receivers[r][0],
                    cal.receivers[r][1],
                    cal.receivers[r][2],
                    cal.offsets_m[r],
                ]
            })
            .collect();
        let mut pos_c = cal.positions.clone();
        let c_cal = refine(
            &ps.first_m,
            nr,
            2,
            &mut rx_c.clone(),
            &mut pos_c.clone(),
            loss,
            0,
        );
        let c_cal2 = refine(&ps.first_m, nr, 2, &mut rx_c, &mut pos_c, loss, 40);
        println!("self-calibration (24 starts): cost {c_cal:.4}; refined on (no motion prior): {c_cal2:.4}; heights {:?}", rx_c.iter().map(|r| (r[2] * 100.0).round() / 100.0).collect::<Vec<_>>());
        return;
    }
    println!("seed | first-path cost | inlier share (first) | all paths explained | support-weighted | CEP50 (truth)");
    for seed in 0..seeds {
        let cfg = SelfCalConfig {
            starts: 1,
            seed,
            ..SelfCalConfig::default()
        };
        let Some(cal) = self_calibrate_tracks(&ps.first_m, nr, &cfg, Some(&motion)) else {
            println!("{seed} | failed");
            continue;
        };
        let tol = (3.0 * cal.inlier_rms_m).clamp(0.05, 0.3);
        let mut explained_total = 0usize;
        for r in 0..nr {
            let mut ex = mark_los(
                &ps,
                r,
                &cal.positions,
                &cal.receivers[r],
                cal.offsets_m[r],
                tol,
            );
            let search = AnchorSearch {
                per_receiver: 7,
                tol_m: tol,
                seed: 0,
                ..AnchorSearch::default()
            };
            let _ = find_anchors(&ps, r, &cal.positions, cal.offsets_m[r], &mut ex, &search);
            for i in 0..n {
                for k in 0..p {
                    if ex[i * p + k] && ps.range_m[(i * nr + r) * p + k].is_finite() {
                        explained_total += 1;
                    }
                }
            }
        }
        let ok: Vec<f64> = cal
            .positions
            .iter()
            .map(|x| if x[0].is_finite() { 1.0 } else { 0.0 })
            .collect();
        let pos: Vec<[f64; 3]> = cal
            .positions
            .iter()
            .map(|x| if x[0].is_finite() { *x } else { [0.0; 3] })
            .collect();
        let e = common::rigid_fit(&pos, &truth, &ok).1;
        println!(
            "{seed} | {:.4} | {:.3} | {:.3} (tol {:.2} m) | - | {:.3} m",
            cal.subset_cost,
            cal.inlier_fraction,
            explained_total as f64 / observed as f64,
            tol,
            quantile(&e, 0.5)
        );
    }
}
