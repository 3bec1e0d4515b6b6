//! DEVELOPMENT: simulate a scenario, extract paths with rfloc-dsp, self-calibrate, score vs truth.
mod common;
use rfloc_channel::scenario::{bundled, Scenario};
use rfloc_learn::features::{extract_paths, PathOptions};
use rfloc_learn::linalg::quantile;
use rfloc_learn::selfcal::{self_calibrate, SelfCalConfig};

fn main() {
    let name = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let frames: Option<usize> = std::env::args().nth(2).and_then(|s| s.parse().ok());
    let t0 = std::time::Instant::now();
    let ds = match bundled(&name) {
        Some(t) => {
            rfloc_channel::simulate(&Scenario::from_toml_str(t).unwrap(), 1, frames).unwrap()
        }
        None => rfloc_csi::dataset::Dataset::read(std::path::Path::new(&name)).unwrap(),
    };
    println!(
        "simulated {} frames in {:.1}s",
        ds.n_frames(),
        t0.elapsed().as_secs_f64()
    );
    let t0 = std::time::Instant::now();
    let mut po = PathOptions::default();
    if let Ok(v) = std::env::var("FIRST_DB") {
        po.first_rel_power_db = v.parse().unwrap();
    }
    let mut ps = extract_paths(&ds, &po, &|_| {}).unwrap();
    if let Ok(t) = std::env::var("LOS_DB") {
        let t: f64 = t.parse().unwrap();
        let (nr, p) = (ps.n_receivers, ps.max_paths);
        let mut kept = 0;
        for i in 0..ps.n_frames {
            for j in 0..nr {
                let f = ps.first_m[i * nr + j];
                let o = (i * nr + j) * p;
                let pw = (0..p)
                    .find(|&k| (ps.range_m[o + k] - f).abs() < 1e-9)
                    .map(|k| ps.power_db[o + k])
                    .unwrap_or(-99.0);
                if pw < -t {
                    ps.first_m[i * nr + j] = f64::NAN;
                } else if f.is_finite() {
                    kept += 1;
                }
            }
        }
        println!("LOS_DB {t}: kept {kept} of {}", ps.n_frames * nr);
    }
    println!(
        "paths in {:.1}s, skipped {}",
        t0.elapsed().as_secs_f64(),
        ps.skipped.len()
    );
    {
        let truth = ds.truth.positions.as_ref().unwrap();
        let td = ds.truth.paths_delay_s.as_ref().unwrap();
        let rxp = ds.meta.receiver_positions().unwrap();
        for j in 0..ps.n_receivers {
            let mut e = vec![];
            let mut et = vec![];
            for i in 0..ds.n_frames() {
                let x = [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]];
                let d = rfloc_learn::geometry::dist(&x, &rxp[j]);
                e.push(ps.first_m[i * ps.n_receivers + j] - d);
                let mut best = f64::INFINITY;
                for k in 0..td.dim().2 {
                    let v = td[[i, j, k]];
                    if v.is_finite() && v < best {
                        best = v;
                    }
                }
                et.push(best * rfloc_learn::geometry::C - d);
            }
            let los: Vec<f64> = e
                .iter()
                .zip(&et)
                .filter(|(_, t)| t.abs() < 0.01)
                .map(|(a, _)| *a)
                .collect();
            let ml = quantile(&los, 0.5);
            let mut near = vec![];
            for i in 0..ds.n_frames() {
                if et[i].abs() >= 0.01 {
                    continue;
                }
                let x = [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]];
                let d = rfloc_learn::geometry::dist(&x, &rxp[j]) + ml;
                let best = ps
                    .link(i, j)
                    .map(|m| m - d)
                    .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                    .unwrap_or(f64::NAN);
                near.push(best);
            }
            let qn: Vec<String> = [0.05, 0.25, 0.5, 0.75, 0.95]
                .iter()
                .map(|q| format!("{:.3}", quantile(&near, *q)))
                .collect();
            println!("rx{j} nearest-path-to-LoS err {:?}", qn);
            let q: Vec<String> = [0.05, 0.25, 0.5, 0.75, 0.95]
                .iter()
                .map(|q| format!("{:.3}", quantile(&los, *q) - ml))
                .collect();
            println!(
                "rx{j} LoS links {} dsp err {:?} offset {:.3}",
                los.len(),
                q,
                ml
            );
            let med = quantile(&e, 0.5);
            let q: Vec<String> = [0.05, 0.25, 0.5, 0.75, 0.9, 0.95]
                .iter()
                .map(|q| format!("{:.3}", quantile(&e, *q) - med))
                .collect();
            let qt: Vec<String> = [0.5, 0.75, 0.9, 0.95]
                .iter()
                .map(|q| format!("{:.3}", quantile(&et, *q)))
                .collect();
            println!(
                "rx{j} dsp first-path err quantiles {:?}  truth-first excess {:?}",
                q, qt
            );
        }
    }
    let t0 = std::time::Instant::now();
    let cal = self_calibrate(&ps.first_m, ps.n_receivers, &SelfCalConfig::default()).unwrap();
    println!(
        "selfcal {:.1}s cost {:.5} inliers {:.3} rms {:.4}",
        t0.elapsed().as_secs_f64(),
        cal.subset_cost,
        cal.inlier_fraction,
        cal.inlier_rms_m
    );
    let truth = ds.truth.positions.as_ref().unwrap();
    let n = ds.n_frames();
    let b: Vec<[f64; 3]> = (0..n)
        .map(|i| [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]])
        .collect();
    let w: Vec<f64> = cal
        .positions
        .iter()
        .map(|x| if x[0].is_finite() { 1.0 } else { 0.0 })
        .collect();
    let a0: Vec<[f64; 3]> = cal
        .positions
        .iter()
        .map(|x| if x[0].is_finite() { *x } else { [0.0; 3] })
        .collect();
    let (iso, errs) = common::rigid_fit(&a0, &b, &w);
    println!(
        "frames {} CEP50 {:.4} CE95 {:.4} max {:.3}",
        errs.len(),
        quantile(&errs, 0.5),
        quantile(&errs, 0.95),
        quantile(&errs, 1.0)
    );
    for (j, rm) in ds.meta.receivers.iter().enumerate() {
        println!(
            "rx{j} {:?} true {:?} off {:.3}",
            iso.apply(&cal.receivers[j]),
            rm.position,
            cal.offsets_m[j]
        );
    }
}
