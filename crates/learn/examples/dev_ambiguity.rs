//! DEVELOPMENT ONLY: does a frame's σ say which frames are wrong? On the held-out tracks, the
//! rank correlation (Spearman) of the product's per-frame σ parts — the range fit's σ, the basin
//! spread of `rfloc_learn::ambiguity`, and `accuracy_m` — with the true error after the rigid
//! fit, and the error by quarter of the spread. Truth is read only to score. `OUT=<csv>` dumps
//! per frame `frame,err,fit,spread,acc,x,y,tx,ty,t,track` (model frame) for smoother studies.
mod common;
use rfloc_learn::linalg::quantile;
use rfloc_learn::{train_recording, Recording, TrainConfig};

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    for (k, &i) in idx.iter().enumerate() {
        r[i] = k as f64;
    }
    r
}

fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..a.len() {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma).powi(2);
        sbb += (rb[i] - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let ds = common::load(&src);
    let ps = common::paths(&ds);
    let rec = Recording::new(&ds, ps.clone());
    let model = train_recording(&rec, &TrainConfig::default(), &mut |_| {}).unwrap();
    let (test, te) = common::held_out(&ds, &model);
    let pse = ps.select(&test);
    let located = model.locate_paths(&pse, true);
    let pf: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
    let (_, err) = common::rigid_fit(&pf, &te, &vec![1.0; pf.len()]);
    let fit: Vec<f64> = located.iter().map(|l| l.fit_sigma_m).collect();
    let spread: Vec<f64> = located.iter().map(|l| l.basin_spread_m).collect();
    let acc: Vec<f64> = located.iter().map(|l| l.accuracy_m).collect();
    println!(
        "held-out frames {}: CEP50 {:.3} CE95 {:.3}",
        test.len(),
        quantile(&err, 0.5),
        quantile(&err, 0.95)
    );
    println!(
        "spearman vs error: fit σ {:.3}, basin spread {:.3}, accuracy_m {:.3}",
        spearman(&fit, &err),
        spearman(&spread, &err),
        spearman(&acc, &err)
    );
    let qs: Vec<f64> = (0..=4).map(|i| quantile(&spread, i as f64 / 4.0)).collect();
    for w in qs.windows(2) {
        let e: Vec<f64> = (0..err.len())
            .filter(|&i| spread[i] >= w[0] && spread[i] <= w[1])
            .map(|i| err[i])
            .collect();
        println!(
            "  spread {:.2}..{:.2} m: {} frames, median error {:.2} m, p95 {:.2} m",
            w[0],
            w[1],
            e.len(),
            quantile(&e, 0.5),
            quantile(&e, 0.95)
        );
    }
    if let Ok(path) = std::env::var("OUT") {
        let mut out = String::from("frame,err,fit,spread,acc,x,y,tx,ty,t,track\n");
        for k in 0..test.len() {
            out += &format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                test[k],
                err[k],
                fit[k],
                spread[k],
                acc[k],
                pf[k][0],
                pf[k][1],
                te[k][0],
                te[k][1],
                ds.timestamps[test[k]],
                ds.track_of(test[k])
            );
        }
        std::fs::write(path, out).unwrap();
    }
}
