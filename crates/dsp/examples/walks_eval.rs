//! Full evaluation on the ray-traced `factory-a-walks-sync` dataset (independent of rfloc):
//! first-path delay error on line-of-sight links after the per-receiver offset calibration, and
//! the classical baseline's position errors with known receivers.
//!
//! `cargo run --release -p rfloc-dsp --example walks_eval [-- DATASET_DIR [THREADS]]`
//!
//! Truth used: `paths_kind.npy` (which links are LoS, evaluation only), `paths_delay_s.npy`
//! (LoS delay, evaluation and offset calibration), `positions.npy` (errors, and the positions
//! of the baseline's labelled calibration frames), receiver positions from `meta.json`.
//! Delay offsets are calibrated on walk (track) 0 and errors reported on walks 1..7, so the
//! calibration frames are not the evaluation frames.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::Array3;
use ndarray_npy::read_npy;
use rfloc_csi::dataset::Dataset;
use rfloc_dsp::baseline::{
    calibrate_on_labels, error_stats, estimate_all, locate_all, percentile, spread_frames,
};
use rfloc_dsp::multilat::{ClockModel, Geometry, MultilatOptions};
use rfloc_dsp::{EstimatorOptions, FirstPathOptions, C};

fn main() {
    let default_dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets/factory-a-walks-sync"
    );
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or(default_dir));
    let threads: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    if !dir.exists() {
        eprintln!("skipped: {} not found", dir.display());
        return;
    }
    if let Err(e) = run(&dir, threads) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(dir: &std::path::Path, threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut ds = Dataset::read(dir)?;
    if std::env::var("RFLOC_NOISELESS").is_ok() {
        // diagnostic: replace the CSI by the noiseless sum of the stored truth paths
        // (gain·e^{−j2π(fc+f_k)τ}), to separate the estimator's noise error from the error
        // that the path cluster itself causes
        let d = ds.truth.paths_delay_s.clone().ok_or("no paths")?;
        let g = ds.truth.paths_gain.clone().ok_or("no gains")?;
        let fc = ds.meta.carrier_hz;
        let offs = ds.meta.subcarrier_offsets_hz.clone();
        let (n, r, p) = d.dim();
        for f in 0..n {
            for i in 0..r {
                for (k, fk) in offs.iter().enumerate() {
                    let mut h = num_complex::Complex64::new(0.0, 0.0);
                    for q in 0..p {
                        let t = d[[f, i, q]];
                        if t.is_finite() {
                            let a = g[[f, i, q]];
                            h += num_complex::Complex64::new(a.re as f64, a.im as f64)
                                * num_complex::Complex64::from_polar(
                                    1.0,
                                    -2.0 * std::f64::consts::PI * (fc + fk) * t,
                                );
                        }
                    }
                    ds.csi[[f, i, 0, k]] = num_complex::Complex32::new(h.re as f32, h.im as f32);
                }
            }
        }
    }
    let kind: Array3<u8> = read_npy(dir.join("paths_kind.npy"))?;
    let delays = ds
        .truth
        .paths_delay_s
        .as_ref()
        .ok_or("no paths_delay_s.npy")?;
    let pos = ds.truth.positions.as_ref().ok_or("no positions.npy")?;
    let rx = ds
        .meta
        .receiver_positions()
        .ok_or("no receiver positions")?;
    let (n, r) = (ds.n_frames(), ds.n_receivers());
    let mut opts = EstimatorOptions::default();
    // tuning knobs (documented in reports/dsp.md): RFLOC_L, RFLOC_D, RFLOC_MAXP, RFLOC_MINDB
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = env("RFLOC_L") {
        opts.subarray_len = v as usize;
    }
    if let Some(v) = env("RFLOC_D") {
        opts.stride = v as usize;
    }
    if let Some(v) = env("RFLOC_MAXP") {
        opts.max_paths = v as usize;
    }
    if let Some(v) = env("RFLOC_MINDB") {
        opts.min_rel_power_db = v;
    }
    if let Some(v) = env("RFLOC_THR") {
        opts.order = rfloc_dsp::OrderRule::NoiseThreshold { factor: v };
    }
    if std::env::var("RFLOC_AIC").is_ok() {
        opts.order = rfloc_dsp::OrderRule::Aic;
    }
    if let Some(v) = env("RFLOC_FIXED") {
        opts.order = rfloc_dsp::OrderRule::Fixed(v as usize);
    }
    if let Some(v) = env("RFLOC_IT") {
        opts.refine_iterations = v as usize;
    }
    if let Some(v) = env("RFLOC_MERGE") {
        opts.merge_s = v * 1e-9;
    }

    let t0 = Instant::now();
    let table = estimate_all(
        ds.csi.view(),
        &ds.meta.subcarrier_offsets_hz,
        &opts,
        threads,
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let n_links = table.links.len();
    let n_err = table.links.iter().filter(|l| l.is_err()).count();
    println!("## {}", ds.meta.name);
    println!();
    println!(
        "{} links ({} frames × {} receivers × {} antennas × {} tones) in {:.2} s on {} thread(s): {:.0} links/s; {} links failed",
        n_links,
        n,
        r,
        ds.n_antennas(),
        ds.n_subcarriers(),
        secs,
        threads,
        n_links as f64 / secs,
        n_err
    );
    let n_paths: Vec<f64> = table
        .links
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .map(|l| l.paths.len() as f64)
        .collect();
    let snr: Vec<f64> = table
        .links
        .iter()
        .filter_map(|l| l.as_ref().ok())
        .map(|l| l.snr_db)
        .collect();
    println!(
        "paths per link: mean {:.2}, median {:.0}; fitted SNR per tone: median {:.1} dB, p10 {:.1} dB",
        n_paths.iter().sum::<f64>() / n_paths.len().max(1) as f64,
        percentile(&n_paths, 0.5),
        percentile(&snr, 0.5),
        percentile(&snr, 0.1)
    );

    let mut fp = FirstPathOptions::default();
    if let Some(v) = env("RFLOC_FPDB") {
        fp.rel_power_db = v;
    }
    if let Some(v) = env("RFLOC_FPSTD") {
        fp.max_std_s = v * 1e-9;
    }
    let first = table.first_path_delays(&fp);
    if let Ok(path) = std::env::var("RFLOC_DUMP") {
        // per-link dump for offline analysis: frame,rx,path,delay_s,gain_re,gain_im,std_s
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(
            w,
            "frame,receiver,path,delay_s,gain_re,gain_im,std_s,snr_db"
        )?;
        for f in 0..n {
            for i in 0..r {
                if let Ok(l) = table.get(f, i, 0) {
                    for (q, p) in l.paths.iter().enumerate() {
                        writeln!(
                            w,
                            "{f},{i},{q},{:e},{:e},{:e},{:e},{:.2}",
                            p.delay_s, p.gain.re, p.gain.im, p.std_s, l.snr_db
                        )?;
                    }
                }
            }
        }
    }
    let track = |f: usize| ds.track_of(f);
    let calib_track = track(0);

    // LoS truth per link
    let los = |f: usize, i: usize| -> Option<f64> {
        (0..kind.dim().2)
            .find(|&p| kind[[f, i, p]] == 0)
            .map(|p| delays[[f, i, p]])
    };
    // per-receiver offset: median over LoS links of the calibration walk
    let mut offsets = Vec::new();
    for i in 0..r {
        let d: Vec<f64> = (0..n)
            .filter(|&f| track(f) == calib_track)
            .filter_map(|f| los(f, i).map(|t| first[[f, i]] - t))
            .collect();
        offsets.push(rfloc_dsp::sanitize::median(&d));
    }
    println!();
    println!(
        "per-receiver offsets calibrated on walk {} (LoS links): {}",
        calib_track,
        offsets
            .iter()
            .map(|o| format!("{:.3} ns", o * 1e9))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // track-smoothed first paths (timestamps + track ids only)
    let tids: Vec<i32> = (0..n).map(|f| ds.track_of(f)).collect();
    let ts: Vec<f64> = ds.timestamps.to_vec();
    let mut sopts = rfloc_dsp::smooth::SmoothOptions::default();
    if let Some(v) = env("RFLOC_SMOOTH_W") {
        sopts.half_window_s = v;
    }
    let smoothed = rfloc_dsp::baseline::smooth_first_paths(&first, &ts, &tids, &sopts)?;
    let mut soff = Vec::new();
    for i in 0..r {
        let d: Vec<f64> = (0..n)
            .filter(|&f| track(f) == calib_track)
            .filter_map(|f| los(f, i).map(|t| smoothed[[f, i]] - t))
            .collect();
        soff.push(rfloc_dsp::sanitize::median(&d));
    }
    let mut serr = Vec::new();
    for f in (0..n).filter(|&f| track(f) != calib_track) {
        for i in 0..r {
            if let Some(t) = los(f, i) {
                serr.push((smoothed[[f, i]] - soff[i] - t).abs());
            }
        }
    }
    let mut err = Vec::new();
    let mut signed = Vec::new();
    let mut n_los = 0;
    let mut n_nlos = 0;
    let mut nlos_err = Vec::new();
    for f in (0..n).filter(|&f| track(f) != calib_track) {
        let x = [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]];
        for i in 0..r {
            match los(f, i) {
                Some(t) => {
                    n_los += 1;
                    let e = first[[f, i]] - offsets[i] - t;
                    signed.push(e);
                    err.push(e.abs());
                }
                None => {
                    n_nlos += 1;
                    let geo = ((x[0] - rx[i][0]).powi(2)
                        + (x[1] - rx[i][1]).powi(2)
                        + (x[2] - rx[i][2]).powi(2))
                    .sqrt()
                        / C;
                    nlos_err.push(first[[f, i]] - offsets[i] - geo);
                }
            }
        }
    }
    let missing = err.iter().filter(|e| !e.is_finite()).count();
    println!();
    println!(
        "### First-path delay error, LoS links of walks ≠ {} ({} LoS links, {} without estimate; {} NLoS links)",
        calib_track, n_los, missing, n_nlos
    );
    println!();
    println!(
        "| statistic | per frame: error (ns) | (cm) | track-smoothed ±{:.2} s: error (ns) | (cm) |",
        sopts.half_window_s
    );
    println!("|---|---|---|---|---|");
    for (name, q) in [
        ("p10", 0.1),
        ("p25", 0.25),
        ("median", 0.5),
        ("p75", 0.75),
        ("p90", 0.9),
        ("p95", 0.95),
        ("p99", 0.99),
        ("max", 1.0),
    ] {
        let v = percentile(&err, q);
        let w = percentile(&serr, q);
        println!(
            "| {name} | {:.3} | {:.1} | {:.3} | {:.1} |",
            v * 1e9,
            v * C * 100.0,
            w * 1e9,
            w * C * 100.0
        );
    }
    let mean_signed = signed.iter().filter(|x| x.is_finite()).sum::<f64>()
        / signed.iter().filter(|x| x.is_finite()).count().max(1) as f64;
    let frac = |thr: f64| {
        err.iter().filter(|e| **e <= thr).count() as f64 / err.len().max(1) as f64 * 100.0
    };
    println!();
    println!(
        "mean signed error {:.3} ns; ≤ 0.1 ns: {:.1} %, ≤ 0.33 ns: {:.1} %, ≤ 1 ns: {:.1} %, ≤ 3 ns: {:.1} %",
        mean_signed * 1e9,
        frac(0.1e-9),
        frac(0.33e-9),
        frac(1e-9),
        frac(3e-9)
    );
    println!(
        "NLoS links (first path vs geometric LoS delay): median {:.2} ns, p90 {:.2} ns",
        percentile(&nlos_err, 0.5) * 1e9,
        percentile(&nlos_err, 0.9) * 1e9
    );

    // baseline
    println!();
    println!("### Baseline (known receivers, offsets calibrated on labelled frames)");
    println!();
    println!("| labelled frames | model | CEP50 (m) | CE95 (m) | RMSE (m) | frames |");
    println!("|---|---|---|---|---|---|");
    for (n_lab, smooth) in [(3usize, false), (10, false), (30, false), (10, true)] {
        let first = if smooth { &smoothed } else { &first };
        let lab = spread_frames(n, n_lab);
        let labels: Vec<(usize, [f64; 3])> = lab
            .iter()
            .map(|&f| (f, [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]]))
            .collect();
        let off = calibrate_on_labels(first, &rx, &labels)?;
        for (name, geometry) in [
            ("2D at z = 1.2 m", Geometry::Plane { z: 1.2 }),
            ("3D", Geometry::Space),
        ] {
            let mut mo = MultilatOptions {
                geometry,
                clock: ClockModel::Synchronized,
                ..Default::default()
            };
            if let Some(v) = env("RFLOC_KAPPA") {
                mo.nlos_slope = v;
            }
            if let Some(v) = env("RFLOC_OUTLIER") {
                mo.outlier_m = v;
            }
            if let Some(v) = env("RFLOC_HUBER") {
                mo.huber_m = v;
            }
            let fixes = locate_all(first, &off, &rx, &mo);
            let errs: Vec<f64> = fixes
                .iter()
                .enumerate()
                .filter(|(f, _)| !lab.contains(f))
                .map(|(f, fx)| match fx {
                    Ok(fx) => {
                        let p = fx.position;
                        ((p[0] - pos[[f, 0]]).powi(2)
                            + (p[1] - pos[[f, 1]]).powi(2)
                            + (p[2] - pos[[f, 2]]).powi(2))
                        .sqrt()
                    }
                    Err(_) => f64::NAN,
                })
                .collect();
            let st = error_stats(&errs);
            println!(
                "| {}{} | {} | {:.3} | {:.3} | {:.3} | {}/{} |",
                n_lab,
                if smooth {
                    " (track-smoothed first paths)"
                } else {
                    ""
                },
                name,
                st.cep50,
                st.ce95,
                st.rmse,
                st.n,
                errs.len()
            );
        }
    }
    Ok(())
}
