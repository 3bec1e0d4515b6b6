//! DEVELOPMENT ONLY: analysis-by-synthesis over a track (each frame's robust path cost plus a
//! pull towards the midpoint of its neighbours, Gauss–Seidel sweeps) against the per-frame solve,
//! on held-out tracks. Truth is read only to score (rigid fit). Env SIGMA_A: the walker's
//! acceleration σ of the track refinement (m/s², default 20); MIRRORS: virtual anchors per
//! receiver (default 7); SMOOTH_FIRST=1: first paths smoothed along each track (rfloc-dsp) for
//! the causality term.
mod common;
use rfloc_learn::refine::refine_frame_near;
use rfloc_learn::{train_recording, Recording, TrainConfig};

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let ds = common::load(&src);
    let ps = common::paths(&ds);
    let rec = Recording::new(&ds, ps.clone());
    let mut cfg = TrainConfig::default();
    if let Ok(v) = std::env::var("MIRRORS") {
        cfg.mirrors = v.parse().unwrap();
    }
    let model = train_recording(&rec, &cfg, &mut |_| {}).unwrap();
    let (test, te) = common::held_out(&ds, &model);
    let mut pse = ps.select(&test);
    if std::env::var("SMOOTH_FIRST").is_ok() {
        // first paths smoothed along each track (rfloc-dsp, ±1 s, Huber), for the causality term
        let (nt, nr) = (test.len(), pse.n_receivers);
        let first = ndarray::Array2::from_shape_fn((nt, nr), |(i, r)| {
            pse.first_m[i * nr + r] / rfloc_learn::geometry::C
        });
        let tt: Vec<f64> = test.iter().map(|&i| ds.timestamps[i]).collect();
        let kk: Vec<i32> = test.iter().map(|&i| ds.track_of(i)).collect();
        let sm =
            rfloc_dsp::baseline::smooth_first_paths(&first, &tt, &kk, &Default::default()).unwrap();
        for i in 0..nt {
            for r in 0..nr {
                if sm[[i, r]].is_finite() {
                    pse.first_m[i * nr + r] = sm[[i, r]] * rfloc_learn::geometry::C;
                }
            }
        }
    }
    let per_frame: Vec<[f64; 3]> = model
        .locate_paths(&pse, true)
        .iter()
        .map(|l| l.position)
        .collect();
    let s0 = common::score(&per_frame, &te);
    println!("per frame: CEP50 {:.3} CE95 {:.3}", s0.0, s0.1);
    let map = model.meta.map();
    let view = map.view();
    let ts: Vec<f64> = test.iter().map(|&i| ds.timestamps[i]).collect();
    let ks: Vec<i32> = test.iter().map(|&i| ds.track_of(i)).collect();
    let mut topts = rfloc_learn::track::TrackRefine::default();
    if let Ok(v) = std::env::var("SIGMA_A") {
        topts.sigma_accel_mps2 = v.parse().unwrap();
    }
    let lib = model.locate_paths_tracked(&pse, &ts, &ks, &topts);
    let sl = common::score(&lib.iter().map(|l| l.position).collect::<Vec<_>>(), &te);
    println!(
        "refine_tracks (defaults): CEP50 {:.3} CE95 {:.3}",
        sl.0, sl.1
    );
    // the learned map's own ceiling: truth moved into the model frame (the inverse of the
    // per-frame rigid fit, truth → model), every frame refined from there
    {
        let w1 = vec![1.0; te.len()];
        let to_model = rfloc_learn::align::fit_isometry(&te, &per_frame, &w1, true);
        let zs = per_frame.iter().map(|p| p[2]).sum::<f64>() / per_frame.len() as f64;
        let from_truth: Vec<[f64; 3]> = (0..te.len())
            .map(|k| {
                let mut x0 = to_model.apply(&te[k]);
                x0[2] = zs;
                rfloc_learn::refine::refine_frame(&pse, k, &view, x0, 2, 0.1, 15).0
            })
            .collect();
        let s = common::score(&from_truth, &te);
        println!(
            "learned map, each frame refined from its true position: CEP50 {:.3} CE95 {:.3}",
            s.0, s.1
        );
    }
    for w in [0.01, 0.1, 1.0, 10.0] {
        let mut x = per_frame.clone();
        for _sweep in 0..15 {
            for k in 0..x.len() {
                let nb = |j: usize| ks[j] == ks[k] && (ts[j] - ts[k]).abs() < 1.0;
                let prev = (k > 0 && nb(k - 1)).then(|| x[k - 1]);
                let next = (k + 1 < x.len() && nb(k + 1)).then(|| x[k + 1]);
                let m = match (prev, next) {
                    (Some(a), Some(b)) => [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0, 0.0],
                    (Some(a), None) | (None, Some(a)) => a,
                    (None, None) => x[k],
                };
                x[k] = refine_frame_near(&pse, k, &view, x[k], 2, 0.1, 10, Some((m, w))).0;
            }
        }
        let s = common::score(&x, &te);
        println!("track w {w}: CEP50 {:.3} CE95 {:.3}", s.0, s.1);
    }
}
