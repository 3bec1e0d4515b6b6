//! DEVELOPMENT: train on a simulated scenario (dsp paths, the product path) or on ground-truth
//! path delays of a dataset ("gt", development only), score held-out tracks against the truth.
//! Env: `EPOCHS`, `MAP_STEPS`, `SEED`, `AUG` (the augmentation's
//! range, m), `AUG_HIDDEN` override the training defaults; `REFIT=0` trains one
//! round (no `TrainConfig::agreed_refit`).
mod common;
use common::gt_paths;
use rfloc_learn::align::fit_isometry;
use rfloc_learn::features::{extract_paths, PathOptions};
use rfloc_learn::linalg::quantile;
use rfloc_learn::{train_recording, Recording, TrainConfig};

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let mode = std::env::args().nth(2).unwrap_or("dsp".into());
    let mut cfg = TrainConfig::default();
    if let Ok(e) = std::env::var("EPOCHS") {
        cfg.epochs = e.parse().unwrap();
    }
    if let Ok(e) = std::env::var("SEED") {
        cfg.seed = e.parse().unwrap();
    }
    if std::env::var("REFIT").is_ok_and(|v| v == "0") {
        cfg.agreed_refit = false;
    }
    if let Ok(e) = std::env::var("MAP_STEPS") {
        cfg.map_steps = e.parse().unwrap();
    }
    if let Ok(e) = std::env::var("AUG") {
        cfg.aug_scale_m = e.parse().unwrap();
    }
    if let Ok(e) = std::env::var("AUG_HIDDEN") {
        cfg.aug_hidden = e.parse().unwrap();
    }
    let t0 = std::time::Instant::now();
    let ds = common::load(&src);
    let ps = if mode == "gt" {
        gt_paths(&ds, 8, 0.01)
    } else {
        extract_paths(&ds, &PathOptions::default(), &|_| {}).unwrap()
    };
    println!("data+paths {:.1}s", t0.elapsed().as_secs_f64());
    let n = ds.n_frames();
    let rec = Recording::new(&ds, ps.clone());
    let truth0 = ds.truth.positions.clone().unwrap();
    let t0 = std::time::Instant::now();
    let model = train_recording(&rec, &cfg, &mut |p| match p {
        rfloc_learn::Progress::Stage(s) => eprintln!("[{:.1}s] {s}", t0.elapsed().as_secs_f64()),
        rfloc_learn::Progress::Step {
            stage, step, loss, ..
        } if stage != "paths" && (step % 50 == 0 || step < 3) => {
            eprintln!("   {stage} {step} {loss:.5}")
        }
        rfloc_learn::Progress::Snapshot {
            stage,
            frames,
            positions,
        } => {
            let b: Vec<[f64; 3]> = frames
                .iter()
                .map(|&i| [truth0[[i, 0]], truth0[[i, 1]], truth0[[i, 2]]])
                .collect();
            let (iso, errs) = common::rigid_fit(&positions, &b, &vec![1.0; b.len()]);
            let al: Vec<[f64; 3]> = positions.iter().map(|x| iso.apply(x)).collect();
            eprintln!(
                "   snapshot {stage}: train CEP50 {:.4} CE95 {:.4} similarity scale {:.4}",
                quantile(&errs, 0.5),
                quantile(&errs, 0.95),
                similarity_scale(&al, &b)
            );
        }
        _ => {}
    })
    .unwrap();
    println!(
        "trained in {:.1}s metrics {:?}",
        t0.elapsed().as_secs_f64(),
        model.meta.metrics
    );
    let held = &model.meta.metrics.holdout_tracks;
    let test: Vec<usize> = (0..n).filter(|&i| held.contains(&ds.track_of(i))).collect();
    let pst = ps.select(&test);
    let truth = ds.truth.positions.as_ref().unwrap();
    let b: Vec<[f64; 3]> = test
        .iter()
        .map(|&i| [truth[[i, 0]], truth[[i, 1]], truth[[i, 2]]])
        .collect();
    for refine in [false, true] {
        let t1 = std::time::Instant::now();
        let loc = model.locate_paths(&pst, refine);
        let dt = t1.elapsed().as_secs_f64();
        let a: Vec<[f64; 3]> = loc.iter().map(|l| l.position).collect();
        let w = vec![1.0; a.len()];
        let iso = fit_isometry(&a, &b, &w, true);
        let errs: Vec<f64> = a
            .iter()
            .zip(&b)
            .map(|(x, y)| {
                let p = iso.apply(x);
                ((p[0] - y[0]).powi(2) + (p[1] - y[1]).powi(2)).sqrt()
            })
            .collect();
        let rmse = (errs.iter().map(|e| e * e).sum::<f64>() / errs.len() as f64).sqrt();
        let al: Vec<[f64; 3]> = a.iter().map(|x| iso.apply(x)).collect();
        println!("  similarity scale {:.4}", similarity_scale(&al, &b));
        println!(
            "refine={refine} test frames {} CEP50 {:.4} CE95 {:.4} RMSE {:.4} ({:.2}s)",
            errs.len(),
            quantile(&errs, 0.5),
            quantile(&errs, 0.95),
            rmse,
            dt
        );
        if refine {
            let rxt = ds.meta.receiver_positions().unwrap();
            for (j, rx) in model.meta.receivers.iter().enumerate() {
                let p = iso.apply(&rx.anchors[0].position);
                println!(
                    "  {} xy err {:.3} m  ({} anchors)",
                    rx.id,
                    ((p[0] - rxt[j][0]).powi(2) + (p[1] - rxt[j][1]).powi(2)).sqrt(),
                    rx.anchors.len()
                );
            }
        }
    }
}

/// The scale a similarity fit would add to rigidly aligned positions `a` (rotation kept), xy.
fn similarity_scale(a: &[[f64; 3]], b: &[[f64; 3]]) -> f64 {
    let nf = a.len() as f64;
    let ca = [0, 1].map(|k| a.iter().map(|p| p[k]).sum::<f64>() / nf);
    let cb = [0, 1].map(|k| b.iter().map(|p| p[k]).sum::<f64>() / nf);
    let (mut num, mut den) = (0.0, 0.0);
    for (p, q) in a.iter().zip(b) {
        for k in 0..2 {
            num += (p[k] - ca[k]) * (q[k] - cb[k]);
            den += (p[k] - ca[k]).powi(2);
        }
    }
    num / den
}
