//! CSI synthesis speed (issue 3): one frame = 4 receivers × 242 tones (802.11ac 80 MHz) × 30
//! paths, on one core. `phase_recurrence` is rfloc's synthesizer; `direct_sincos` the same sum
//! with a sin/cos per term (the peer it is measured against in the same run); `simulate_frame` the
//! whole simulator per frame (image sources, dense multipath, impairments, noise) on factory-hall.
//!
//! `cargo bench --bench synthesis` (throughput is reported in frames/s as elements/s).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use num_complex::Complex64;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rfloc_channel::{bundled, simulate, Scenario, Synthesizer, TonePlan};
use std::hint::black_box;

const RECEIVERS: usize = 4;
const PATHS: usize = 30;

fn frame_paths() -> Vec<(Vec<f64>, Vec<Complex64>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    (0..RECEIVERS)
        .map(|_| {
            let d: Vec<f64> = (0..PATHS)
                .map(|_| rng.random_range(10e-9..200e-9))
                .collect();
            let g: Vec<Complex64> = (0..PATHS)
                .map(|_| {
                    Complex64::from_polar(rng.random_range(1e-5..1e-3), rng.random_range(0.0..6.28))
                })
                .collect();
            (d, g)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let plan = TonePlan::wifi(80, 5.2e9).expect("80 MHz plan");
    let paths = frame_paths();
    let mut out = vec![vec![Complex64::new(0.0, 0.0); plan.len()]; RECEIVERS];

    let mut group = c.benchmark_group("synthesis_4rx_242tones_30paths");
    group.throughput(Throughput::Elements(1));
    let mut synth = Synthesizer::new(plan.clone());
    group.bench_function("phase_recurrence", |b| {
        b.iter(|| {
            for (r, (d, g)) in paths.iter().enumerate() {
                out[r]
                    .iter_mut()
                    .for_each(|x| *x = Complex64::new(0.0, 0.0));
                synth.add_paths(black_box(d), black_box(g), &mut out[r]);
            }
            black_box(&out);
        })
    });
    group.bench_function("direct_sincos", |b| {
        b.iter(|| {
            for (r, (d, g)) in paths.iter().enumerate() {
                out[r]
                    .iter_mut()
                    .for_each(|x| *x = Complex64::new(0.0, 0.0));
                plan.synthesize_direct(black_box(d), black_box(g), true, &mut out[r]);
            }
            black_box(&out);
        })
    });
    group.finish();

    let scenario =
        Scenario::from_toml_str(bundled("factory-hall").expect("bundled")).expect("scenario");
    let frames = 200;
    let mut group = c.benchmark_group("simulate_factory_hall");
    group.sample_size(10);
    group.throughput(Throughput::Elements(frames as u64));
    group.bench_function("simulate_frame", |b| {
        b.iter(|| black_box(simulate(&scenario, 1, Some(frames)).expect("simulate")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
