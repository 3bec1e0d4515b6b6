//! Encoder inference throughput: frames/s on one core, in batches (burn flex backend).
//! Run: `RAYON_NUM_THREADS=1 cargo bench --bench encoder`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rfloc_learn::burn::prelude::*;
use rfloc_learn::nets::Encoder;

fn bench(c: &mut Criterion) {
    let device = rfloc_learn::train::default_device();
    // The shipped encoder: 4 receivers × (1 + 3·3 + 1) inputs, 128 hidden, 2 outputs.
    let inputs = 4 * (1 + 3 * 3 + 1);
    let enc = Encoder::new(inputs, 128, 2, &device);
    let mut g = c.benchmark_group("encoder");
    for batch in [256usize, 1024, 4096] {
        let data: Vec<f32> = (0..batch * inputs)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect();
        let x: Tensor<2> = Tensor::from_data(TensorData::new(data, [batch, inputs]), &device);
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
            b.iter(|| {
                let y = enc.forward(x.clone());
                let v: Vec<f32> = y
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default();
                std::hint::black_box(v)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
