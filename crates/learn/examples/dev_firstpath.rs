//! DEVELOPMENT ONLY: how the error of dsp's first path (the product's features) on
//! line-of-sight links depends on the link's length. Prints, per receiver, a least-absolute-
//! deviations line `error = a + b · range` and the median error in five range bands; with
//! `CSV=1` every link's paths beside the true geometric range on stdout instead.
//! Usage: dev_firstpath DATASET|SCENARIO (needs the dataset's true path delays)
mod common;
use rfloc_learn::features::{extract_paths, PathOptions};
use rfloc_learn::geometry::C;
use rfloc_learn::linalg::{median, quantile};

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let ds = common::load(&src);
    let ps = extract_paths(&ds, &PathOptions::default(), &|_| {}).unwrap();
    let t = ds.truth.positions.as_ref().unwrap();
    let rx = ds.meta.receiver_positions().unwrap();
    let d = ds.truth.paths_delay_s.as_ref().expect("true path delays");
    let (r, p) = (ps.n_receivers, ps.max_paths);
    let csv = std::env::var("CSV").is_ok();
    if csv {
        print!("frame,track,rx,tx,ty,tz,geo,true_first,first");
        for k in 0..p {
            print!(",r{k},p{k}");
        }
        println!();
    }
    // per receiver: (true range, first-path error) of the line-of-sight links
    let mut los: Vec<Vec<(f64, f64)>> = vec![Vec::new(); r];
    for i in 0..ds.n_frames() {
        for j in 0..r {
            let x = [t[[i, 0]], t[[i, 1]], t[[i, 2]]];
            let geo = (0..3)
                .map(|a| (x[a] - rx[j][a]).powi(2))
                .sum::<f64>()
                .sqrt();
            let tf = (0..d.dim().2)
                .map(|k| d[[i, j, k]])
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min)
                * C;
            let first = ps.first_m[i * r + j];
            if (tf - geo).abs() < 0.01 && first.is_finite() {
                los[j].push((geo, first - geo));
            }
            if csv {
                print!(
                    "{i},{},{j},{},{},{},{geo},{tf},{first}",
                    ds.track_of(i),
                    x[0],
                    x[1],
                    x[2]
                );
                for k in 0..p {
                    let o = (i * r + j) * p + k;
                    print!(",{},{}", ps.range_m[o], ps.power_db[o]);
                }
                println!();
            }
        }
    }
    for (j, links) in los.iter().enumerate() {
        let (a, b) = lad_line(links);
        let g: Vec<f64> = links.iter().map(|l| l.0).collect();
        let off = median(&links.iter().map(|l| l.1).collect::<Vec<_>>());
        let edges: Vec<f64> = (0..=5).map(|q| quantile(&g, q as f64 / 5.0)).collect();
        let bands: Vec<String> = (0..5)
            .map(|q| {
                let e: Vec<f64> = links
                    .iter()
                    .filter(|l| l.0 >= edges[q] && (l.0 < edges[q + 1] || q == 4))
                    .map(|l| l.1 - off)
                    .collect();
                format!("{:.0}–{:.0} m {:+.3}", edges[q], edges[q + 1], median(&e))
            })
            .collect();
        eprintln!(
            "receiver {j}: {} line-of-sight links, error = {a:+.3} m {:+.2} % × range; median error less the offset by range band: {}",
            links.len(),
            100.0 * b,
            bands.join(", ")
        );
    }
}

/// Least-absolute-deviations line through `(x, y)` by iteratively reweighted least squares.
fn lad_line(xy: &[(f64, f64)]) -> (f64, f64) {
    let (mut a, mut b) = (0.0, 0.0);
    let mut w = vec![1.0; xy.len()];
    for _ in 0..30 {
        let (mut s, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&(x, y), &wi) in xy.iter().zip(&w) {
            s += wi;
            sx += wi * x;
            sy += wi * y;
            sxx += wi * x * x;
            sxy += wi * x * y;
        }
        let det = s * sxx - sx * sx;
        b = (s * sxy - sx * sy) / det;
        a = (sy - b * sx) / s;
        for (&(x, y), wi) in xy.iter().zip(w.iter_mut()) {
            *wi = 1.0 / (y - a - b * x).abs().max(0.02);
        }
    }
    (a, b)
}
