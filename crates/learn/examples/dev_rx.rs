//! DEVELOPMENT: how well the self-calibration recovers the receivers (seeds 0..S), on the
//! training frames `rfloc train` would use (env TRACKS=k: only tracks < k, like a report).
mod common;
use rfloc_learn::align::fit_isometry;
use rfloc_learn::linalg::quantile;
use rfloc_learn::selfcal::{
    self_calibrate_tracks, self_calibrate_with_labels, Motion, SelfCalConfig,
};
use rfloc_learn::train::split_by_track;
use rfloc_learn::TrainConfig;

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let seeds: u64 = std::env::var("SEEDS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(5);
    let ds = common::load(&src);
    let ps_all = common::paths(&ds);
    let tr: Vec<i32> = ds.track_ids.clone().unwrap().to_vec();
    let max_track: i32 = std::env::var("TRACKS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(i32::MAX);
    let keep: Vec<usize> = (0..ds.n_frames()).filter(|&i| tr[i] < max_track).collect();
    let tr_k: Vec<i32> = keep.iter().map(|&i| tr[i]).collect();
    let (train_rel, _, held) = split_by_track(&tr_k, 0.15);
    let train_idx: Vec<usize> = train_rel.iter().map(|&i| keep[i]).collect();
    println!("train frames {} held {:?}", train_idx.len(), held);
    let ps = ps_all.select(&train_idx);
    let cfg = TrainConfig::default();
    let truth = ds.truth.positions.clone().unwrap();
    let t: Vec<[f64; 3]> = train_idx
        .iter()
        .map(|&i| [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]])
        .collect();
    let rx_true: Vec<[f64; 3]> = ds
        .meta
        .receivers
        .iter()
        .map(|r| r.position.unwrap())
        .collect();
    let tag_z = quantile(&t.iter().map(|p| p[2]).collect::<Vec<_>>(), 0.5);
    let ts: Vec<f64> = train_idx.iter().map(|&i| ds.timestamps[i]).collect();
    let motion = Motion {
        timestamps: &ts,
        track_ids: &train_idx.iter().map(|&i| tr[i]).collect::<Vec<_>>(),
        max_speed_mps: cfg.max_speed_mps,
        weight: cfg.motion_weight,
    };
    for seed in 0..seeds {
        let sc = SelfCalConfig {
            dims: cfg.dims,
            starts: cfg.restarts,
            subset: cfg.selfcal_subset,
            seed,
            cauchy_m: cfg.delta_m,
            one_sided: true,
            site_radius: std::env::var("SITE")
                .map(|v| v.parse().unwrap())
                .unwrap_or(cfg.site_radius),
        };
        let t0 = std::time::Instant::now();
        let cal = self_calibrate_tracks(&ps.first_m, ps.n_receivers, &sc, Some(&motion)).unwrap();
        if let Ok(k) = std::env::var("PINS") {
            let k: usize = k.parse().unwrap();
            let nt = t.len();
            for draw in 0..3u64 {
                let pins: Vec<(usize, [f64; 3])> = (0..k)
                    .map(|i| {
                        let n = (i * nt / k + (draw as usize * 977 + 131) % (nt / k)) % nt;
                        (n, t[n])
                    })
                    .collect();
                // anchored: isometry on the pins only
                let ok = |p: &[f64; 3]| p[0].is_finite();
                let a: Vec<[f64; 3]> = pins
                    .iter()
                    .map(|&(n, _)| {
                        let p = cal.positions[n];
                        if ok(&p) {
                            [p[0], p[1], 0.0]
                        } else {
                            [0.0; 3]
                        }
                    })
                    .collect();
                let b: Vec<[f64; 3]> = pins.iter().map(|&(_, x)| [x[0], x[1], 0.0]).collect();
                let w: Vec<f64> = pins
                    .iter()
                    .map(|&(n, _)| if ok(&cal.positions[n]) { 1.0 } else { 0.0 })
                    .collect();
                let iso = fit_isometry(&a, &b, &w, true);
                let abs_err = |p: &[f64; 3], q: &[f64; 3]| {
                    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
                };
                let e1: Vec<f64> = (0..nt)
                    .filter(|&n| ok(&cal.positions[n]))
                    .map(|n| {
                        abs_err(
                            &iso.apply(&[cal.positions[n][0], cal.positions[n][1], 0.0]),
                            &t[n],
                        )
                    })
                    .collect();
                let calp = self_calibrate_with_labels(
                    &ps.first_m,
                    ps.n_receivers,
                    &sc,
                    Some(&motion),
                    &pins,
                )
                .unwrap();
                let e2: Vec<f64> = (0..nt)
                    .filter(|&n| ok(&calp.positions[n]))
                    .map(|n| abs_err(&calp.positions[n], &t[n]))
                    .collect();
                let rxe: Vec<String> = calp
                    .receivers
                    .iter()
                    .zip(&rx_true)
                    .map(|(r, q)| {
                        format!(
                            "{:.2}",
                            ((r[0] - q[0]).powi(2) + (r[1] - q[1]).powi(2)).sqrt()
                        )
                    })
                    .collect();
                println!("  pins {k} draw {draw}: anchored CEP50 {:.3} CE95 {:.3} | pinned self-cal CEP50 {:.3} CE95 {:.3} rx {}", quantile(&e1, 0.5), quantile(&e1, 0.95), quantile(&e2, 0.5), quantile(&e2, 0.95), rxe.join(" "));
            }
        }
        let w: Vec<f64> = cal
            .positions
            .iter()
            .map(|p| if p[0].is_finite() { 1.0 } else { 0.0 })
            .collect();
        let pz: Vec<[f64; 3]> = cal
            .positions
            .iter()
            .map(|p| {
                if p[0].is_finite() {
                    [p[0], p[1], 0.0]
                } else {
                    [0.0; 3]
                }
            })
            .collect();
        let (iso, errs) = common::rigid_fit(
            &pz,
            &t.iter().map(|p| [p[0], p[1], 0.0]).collect::<Vec<_>>(),
            &w,
        );
        let rxe: Vec<String> = cal
            .receivers
            .iter()
            .zip(&rx_true)
            .map(|(r, q)| {
                let a = iso.apply(&[r[0], r[1], 0.0]);
                format!(
                    "{:.2}(h {:.1}/{:.1})",
                    ((a[0] - q[0]).powi(2) + (a[1] - q[1]).powi(2)).sqrt(),
                    r[2].abs(),
                    q[2] - tag_z
                )
            })
            .collect();
        println!(
            "seed {seed}: CEP50 {:.3} CE95 {:.3} cost {:.4} inl {:.3} rx {} off {:?} ({:.1}s)",
            quantile(&errs, 0.5),
            quantile(&errs, 0.95),
            cal.subset_cost,
            cal.inlier_fraction,
            rxe.join(" "),
            cal.offsets_m
                .iter()
                .map(|v| (v * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            t0.elapsed().as_secs_f64()
        );
    }
}
