//! DEVELOPMENT ONLY: self-calibration on ground-truth path delays (plus unknown receiver offsets
//! and noise added here) of the ray-traced dataset, to check the solver before dsp lands.
//! The product path (`rfloc train`) never reads these files.
mod common;
use ndarray::{Array2, Array3};
use ndarray_npy::read_npy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rfloc_learn::geometry::C;
use rfloc_learn::linalg::quantile;
use rfloc_learn::selfcal::{self_calibrate, SelfCalConfig};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or("/work/shared/datasets/factory-a-walks-sync".into());
    let noise_m: f64 = std::env::args()
        .nth(2)
        .map(|s| s.parse().unwrap())
        .unwrap_or(0.02);
    let delays: Array3<f64> = read_npy(format!("{dir}/paths_delay_s.npy")).unwrap();
    let pos: Array2<f64> = read_npy(format!("{dir}/positions.npy")).unwrap();
    let (n, r, p) = delays.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let off: Vec<f64> = (0..r).map(|_| rng.random_range(0.0..40e-9)).collect();
    let nd = Normal::new(0.0, noise_m).unwrap();
    let mut m = vec![f64::NAN; n * r];
    for i in 0..n {
        for j in 0..r {
            let mut best = f64::INFINITY;
            for k in 0..p {
                let d = delays[[i, j, k]];
                if d.is_finite() && d < best {
                    best = d;
                }
            }
            if best.is_finite() {
                m[i * r + j] = (best + off[j]) * C + nd.sample(&mut rng);
            }
        }
    }
    let rxs = [
        [0.3, 0.3, 5.0],
        [19.7, 0.3, 4.5],
        [19.7, 14.7, 5.0],
        [0.3, 8.0, 4.5],
    ];
    oracle(&m, r, &pos, &rxs, &off);
    let kind: ndarray::Array3<u8> = read_npy(format!("{dir}/paths_kind.npy")).unwrap();
    let mut res = vec![];
    let mut los = 0;
    for i in 0..n {
        for j in 0..r {
            let d = ((pos[[i, 0]] - rxs[j][0]).powi(2)
                + (pos[[i, 1]] - rxs[j][1]).powi(2)
                + (pos[[i, 2]] - rxs[j][2]).powi(2))
            .sqrt();
            res.push(m[i * r + j] - off[j] * C - d);
            if kind[[i, j, 0]] == 0 {
                los += 1;
            }
        }
    }
    println!(
        "z0 {} los frac {:.3}; residual quantiles {:?}",
        pos[[0, 2]],
        los as f64 / (n * r) as f64,
        [0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
            .iter()
            .map(|q| quantile(&res, *q))
            .collect::<Vec<_>>()
    );
    if std::env::var("LOS_ONLY").is_ok() {
        for i in 0..n {
            for j in 0..r {
                if kind[[i, j, 0]] != 0 {
                    m[i * r + j] = f64::NAN;
                }
            }
        }
    }
    let t0 = std::time::Instant::now();
    let cfg = SelfCalConfig::default();
    let sc = self_calibrate(&m, r, &cfg).unwrap();
    println!(
        "selfcal {:.1}s cost {:.5} inliers {:.3} rms {:.4}",
        t0.elapsed().as_secs_f64(),
        sc.subset_cost,
        sc.inlier_fraction,
        sc.inlier_rms_m
    );
    let a: Vec<[f64; 3]> = (0..n).map(|i| sc.positions[i]).collect();
    let b: Vec<[f64; 3]> = (0..n)
        .map(|i| [pos[[i, 0]], pos[[i, 1]], pos[[i, 2]]])
        .collect();
    let w: Vec<f64> = a
        .iter()
        .map(|x| if x[0].is_finite() { 1.0 } else { 0.0 })
        .collect();
    let a0: Vec<[f64; 3]> = a
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
    for j in 0..r {
        println!(
            "rx{j} {:?} off {:.3} (true off {:.3})",
            iso.apply(&sc.receivers[j]),
            sc.offsets_m[j],
            off[j] * C
        );
    }
}

#[allow(dead_code)]
fn oracle(m: &[f64], r: usize, pos: &Array2<f64>, rxs: &[[f64; 3]], off: &[f64]) {
    use rfloc_learn::geometry::Robust;
    let mut rx: Vec<[f64; 4]> = (0..r)
        .map(|j| [rxs[j][0], rxs[j][1], rxs[j][2] - 1.2, off[j] * C])
        .collect();
    let mut p: Vec<[f64; 3]> = (0..pos.nrows())
        .map(|i| [pos[[i, 0]], pos[[i, 1]], 0.0])
        .collect();
    let c = rfloc_learn::selfcal::refine(m, r, 2, &mut rx, &mut p, Robust::Cauchy(0.1), 0);
    let c2 = rfloc_learn::selfcal::refine(m, r, 2, &mut rx, &mut p, Robust::Cauchy(0.1), 100);
    println!("oracle cost {c:.5} -> {c2:.5}; rx {:?}", rx);
}
