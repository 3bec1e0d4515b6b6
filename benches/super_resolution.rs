//! Links per second of the per-link super-resolution estimator on one core (242 tones).
//!
//! `cargo bench --bench super_resolution`. Uses the first 500 frames × 4 receivers (2,000
//! links) of `../shared/datasets/factory-a-walks-sync` — the same links as
//! `benches/esprit_peer.py` — or, when that folder is absent, 2,000 synthetic 4-path links.
//! Throughput is reported in elements = links.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use num_complex::Complex64;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rfloc_dsp::{EstimatorOptions, Method, PathEstimator};

const N_FRAMES: usize = 500;

fn links() -> (Vec<f64>, Vec<Vec<Complex64>>) {
    // ../shared from the workspace root (this file may also be built from crates/dsp)
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = [root.join("../shared"), root.join("../../../shared")]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| root.join("../shared"))
        .join("datasets/factory-a-walks-sync");
    if let Ok(ds) = rfloc_csi::dataset::Dataset::read_blind(&dir) {
        let mut out = Vec::new();
        for f in 0..N_FRAMES.min(ds.n_frames()) {
            for r in 0..ds.n_receivers() {
                out.push(
                    ds.csi
                        .slice(ndarray::s![f, r, 0, ..])
                        .iter()
                        .map(|c| Complex64::new(c.re as f64, c.im as f64))
                        .collect(),
                );
            }
        }
        return (ds.meta.subcarrier_offsets_hz.clone(), out);
    }
    eprintln!("skipped: ../shared not found, benchmarking synthetic links");
    let f: Vec<f64> = (-122i32..=122)
        .filter(|k| k.abs() >= 2)
        .map(|k| k as f64 * 312.5e3)
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let out = (0..N_FRAMES * 4)
        .map(|_| {
            let paths: Vec<(f64, Complex64)> = (0..4)
                .map(|_| {
                    (
                        rng.random_range(10e-9..200e-9),
                        Complex64::from_polar(
                            rng.random_range(0.3..1.0),
                            rng.random_range(0.0..6.28),
                        ),
                    )
                })
                .collect();
            f.iter()
                .map(|fk| {
                    paths
                        .iter()
                        .map(|(t, a)| {
                            a * Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * fk * t)
                        })
                        .sum::<Complex64>()
                        + Complex64::new(
                            rng.random_range(-0.03..0.03),
                            rng.random_range(-0.03..0.03),
                        )
                })
                .collect()
        })
        .collect();
    (f, out)
}

fn bench(c: &mut Criterion) {
    let (offsets, links) = links();
    let mut g = c.benchmark_group("super_resolution");
    g.throughput(Throughput::Elements(links.len() as u64));
    g.sample_size(10);
    let variants = [
        // the default: ESPRIT delays + LS gains (no NLS refinement)
        ("esprit_default", EstimatorOptions::default()),
        (
            "esprit_nls6",
            EstimatorOptions {
                refine_iterations: 6,
                ..Default::default()
            },
        ),
        (
            "music",
            EstimatorOptions {
                method: Method::Music,
                ..Default::default()
            },
        ),
    ];
    for (name, opts) in variants {
        let mut est = PathEstimator::new(&offsets, opts).expect("estimator");
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0usize;
                for l in &links {
                    n += est.estimate(black_box(l)).map(|p| p.len()).unwrap_or(0);
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
