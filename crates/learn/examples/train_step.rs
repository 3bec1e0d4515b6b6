//! Times the encoder's training step (MLP inputs→128→128→128→2, batch 256, MSE, Adam) on the
//! burn backend this crate uses, for the side-by-side with `benches/train_peer.py` (JAX).
//! Prints one line: `burn steps_per_s <value> ms_per_step <value>`.
use rfloc_learn::burn::optim::{AdamConfig, GradientsParams};
use rfloc_learn::burn::prelude::*;
use rfloc_learn::nets::Encoder;

fn main() {
    let inputs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(44);
    let batch: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let steps: usize = std::env::args()
        .nth(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let device = rfloc_learn::train::default_device().autodiff();
    let mut enc = Encoder::new(inputs, 128, 2, &device);
    let mut opt = AdamConfig::new().init();
    let x: Vec<f32> = (0..batch * inputs)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
        .collect();
    let y: Vec<f32> = (0..batch * 2)
        .map(|i| ((i * 104729) % 1000) as f32 / 100.0)
        .collect();
    let x: Tensor<2> = Tensor::from_data(TensorData::new(x, [batch, inputs]), &device);
    let y: Tensor<2> = Tensor::from_data(TensorData::new(y, [batch, 2]), &device);
    let mut step = |enc: Encoder| {
        let d = enc.forward(x.clone()) - y.clone();
        let loss = (d.clone() * d).mean();
        let g = GradientsParams::from_grads(loss.backward(), &enc);
        opt.step(1e-3, enc, g)
    };
    for _ in 0..20 {
        enc = step(enc);
    }
    let t0 = std::time::Instant::now();
    for _ in 0..steps {
        enc = step(enc);
    }
    let v: Vec<f32> = enc
        .out
        .bias
        .as_ref()
        .map(|b| {
            b.val()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default()
        })
        .unwrap_or_default();
    std::hint::black_box(v);
    let s = t0.elapsed().as_secs_f64();
    println!(
        "burn steps_per_s {:.1} ms_per_step {:.3}",
        steps as f64 / s,
        1e3 * s / steps as f64
    );
}
