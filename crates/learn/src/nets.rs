//! The burn modules: physics decoder (learnable virtual anchors, offsets, neural augmentation),
//! the per-frame latent positions used while fitting the map, and the encoder MLP.
//!
//! Decoder equation (metres), anchors grouped `M` per receiver (`a = r·M + k`, `k = 0` is the
//! receiver itself, `k ≥ 1` its mirror images):
//!
//! ```text
//! m̂[b, a] = |x_b − v_a| + β_r(a) + s · tanh(MLP(x_b))[a]          s = augmentation range (m)
//! loss    = mean over observed paths (b, r, p) of  δ² · ln(1 + min_k (m[b,r,p] − m̂[b, r·M+k])² / δ²)
//! ```
//!
//! The set loss matches every observed path to the closest anchor of its receiver (the
//! correspondence is unknown); the Cauchy form caps paths no anchor explains (diffraction,
//! spurious estimates), and anchors that explain nothing cost nothing (blocked paths).

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A linear layer `inputs → outputs` with weight and bias drawn from `U(−k, k)`, `k = 1/√inputs`
/// (burn's default initialiser) but from `rng`: burn's own initialiser draws from a process-wide
/// RNG seeded from entropy, so two trainings with the same seed would start differently.
pub fn seeded_linear(
    inputs: usize,
    outputs: usize,
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Linear {
    let k = 1.0 / (inputs.max(1) as f64).sqrt();
    let w: Vec<f32> = (0..inputs * outputs)
        .map(|_| rng.random_range(-k..k) as f32)
        .collect();
    let b: Vec<f32> = (0..outputs)
        .map(|_| rng.random_range(-k..k) as f32)
        .collect();
    Linear {
        weight: Param::from_tensor(Tensor::from_data(
            TensorData::new(w, [inputs, outputs]),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [outputs]),
            device,
        ))),
    }
}

/// Physics decoder: the learned map.
#[derive(Module, Debug)]
pub struct Decoder {
    /// Virtual anchors `[R·M, 3]` (m).
    pub anchors: Param<Tensor<2>>,
    /// Fixed range offset per receiver `[R]` (m).
    pub offsets: Param<Tensor<1>>,
    /// Augmentation network: position → per-anchor range correction.
    pub aug_in: Linear,
    pub aug_out: Linear,
}

impl Decoder {
    /// A decoder with the given anchors (`[R·M][3]`) and offsets; the augmentation starts at zero.
    pub fn new(anchors: &[[f64; 3]], offsets: &[f64], hidden: usize, device: &Device) -> Self {
        Self::with_seed(anchors, offsets, hidden, 0, device)
    }

    /// [`Decoder::new`] with the augmentation's hidden layer drawn from `seed`.
    pub fn with_seed(
        anchors: &[[f64; 3]],
        offsets: &[f64],
        hidden: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = anchors.len();
        let flat: Vec<f32> = anchors
            .iter()
            .flat_map(|v| v.iter().map(|x| *x as f32))
            .collect();
        let off: Vec<f32> = offsets.iter().map(|x| *x as f32).collect();
        let aug_in = seeded_linear(3, hidden, &mut rng, device);
        let mut aug_out = seeded_linear(hidden, a, &mut rng, device);
        aug_out.weight = Param::from_tensor(Tensor::zeros([hidden, a], device));
        Self {
            anchors: Param::from_tensor(Tensor::from_data(TensorData::new(flat, [a, 3]), device)),
            offsets: Param::from_tensor(Tensor::from_data(
                TensorData::new(off, [offsets.len()]),
                device,
            )),
            aug_in,
            aug_out,
        }
    }

    /// Predicted ranges `[B, R·M]` for positions `x` `[B, 3]`; `aug_scale` (m) bounds the
    /// augmentation's correction (0 disables it).
    pub fn forward(&self, x: Tensor<2>, per_receiver: usize, aug_scale: f64) -> Tensor<2> {
        let [b, _] = x.dims();
        let anchors = self.anchors.val();
        let [a, _] = anchors.dims();
        let r = a / per_receiver;
        let diff = x.clone().unsqueeze_dim::<3>(1) - anchors.unsqueeze_dim::<3>(0);
        let d = (diff.clone() * diff)
            .sum_dim(2)
            .reshape([b, a])
            .add_scalar(1e-9)
            .sqrt();
        let off = self
            .offsets
            .val()
            .reshape([r, 1])
            .repeat_dim(1, per_receiver)
            .reshape([1, a]);
        let mut m = d + off;
        if aug_scale > 0.0 {
            let h = relu(self.aug_in.forward(x));
            m = m + self.aug_out.forward(h).tanh().mul_scalar(aug_scale);
        }
        m
    }
}

/// Set-matching loss (see module docs). `obs` `[B, R, P]` ranges with NaN replaced by 0 and
/// `obs_mask` 1 where a path exists; `anchor_mask` `[R, M]` 1 for real anchors.
pub fn set_loss(
    pred: Tensor<2>,
    obs: Tensor<3>,
    obs_mask: Tensor<3>,
    anchor_mask: Tensor<2>,
    delta: f64,
) -> Tensor<1> {
    let [b, r, p] = obs.dims();
    let [_, m] = anchor_mask.dims();
    let pred = pred.reshape([b, r, m, 1]);
    let o = obs.reshape([b, r, 1, p]);
    let e = o - pred;
    let penalty = (anchor_mask.neg().add_scalar(1.0))
        .mul_scalar(1e6)
        .reshape([1, r, m, 1]);
    let e2 = (e.clone() * e) + penalty;
    let best = e2.min_dim(2).reshape([b, r, p]);
    let rho = best
        .div_scalar(delta * delta)
        .log1p()
        .mul_scalar(delta * delta);
    let w = obs_mask;
    let n = w.clone().sum().add_scalar(1e-9);
    (rho * w).sum() / n
}

/// Per-frame positions being fitted together with the map (the autoencoder's latent codes
/// before the encoder amortises them). `dims` columns are free; the rest stay 0.
#[derive(Module, Debug)]
pub struct Latent {
    pub pos: Param<Tensor<2>>,
}

impl Latent {
    pub fn new(pos: &[[f64; 3]], dims: usize, device: &Device) -> Self {
        let flat: Vec<f32> = pos
            .iter()
            .flat_map(|v| v[..dims].iter().map(|x| *x as f32))
            .collect();
        Self {
            pos: Param::from_tensor(Tensor::from_data(
                TensorData::new(flat, [pos.len(), dims]),
                device,
            )),
        }
    }

    /// Positions of frames `idx` padded to `[B, 3]`.
    pub fn rows(&self, idx: Tensor<1, Int>) -> Tensor<2> {
        pad3(self.pos.val().select(0, idx))
    }
}

/// Pads `[B, D]` positions with zero columns to `[B, 3]`.
pub fn pad3(x: Tensor<2>) -> Tensor<2> {
    let [b, d] = x.dims();
    if d >= 3 {
        return x;
    }
    let z = Tensor::zeros([b, 3 - d], &x.device());
    Tensor::cat(vec![x, z], 1)
}

/// Encoder: frame features → position (`dims` outputs, in the learned frame, metres).
#[derive(Module, Debug)]
pub struct Encoder {
    pub l1: Linear,
    pub l2: Linear,
    pub l3: Linear,
    pub out: Linear,
}

impl Encoder {
    pub fn new(inputs: usize, hidden: usize, dims: usize, device: &Device) -> Self {
        Self::with_seed(inputs, hidden, dims, 0, device)
    }

    /// [`Encoder::new`] with the weights drawn from `seed` (same seed, same network).
    pub fn with_seed(
        inputs: usize,
        hidden: usize,
        dims: usize,
        seed: u64,
        device: &Device,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Self {
            l1: seeded_linear(inputs, hidden, &mut rng, device),
            l2: seeded_linear(hidden, hidden, &mut rng, device),
            l3: seeded_linear(hidden, hidden, &mut rng, device),
            out: seeded_linear(hidden, dims, &mut rng, device),
        }
    }

    /// `[B, F]` → `[B, dims]`.
    pub fn forward(&self, f: Tensor<2>) -> Tensor<2> {
        let h = relu(self.l1.forward(f));
        let h = relu(self.l2.forward(h));
        let h = relu(self.l3.forward(h));
        self.out.forward(h)
    }
}

/// A 2-D tensor's values, row-major (empty if it cannot be read as `f32`).
pub(crate) fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// A digest (xxh3) of every weight of an encoder and a decoder, in a fixed order. model.json
/// records it ([`crate::model::Model::save`]), so that weights and a map that do not belong
/// together — a save interrupted between its files, files copied from two models — are refused
/// on load instead of located with.
pub fn weights_digest(encoder: &Encoder, decoder: &Decoder) -> u64 {
    fn flat<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default()
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut add = |v: Vec<f32>| {
        h.update(&(v.len() as u64).to_le_bytes());
        for x in v {
            h.update(&x.to_bits().to_le_bytes());
        }
    };
    for l in [
        &encoder.l1,
        &encoder.l2,
        &encoder.l3,
        &encoder.out,
        &decoder.aug_in,
        &decoder.aug_out,
    ] {
        add(flat(l.weight.val()));
        add(l.bias.as_ref().map(|b| flat(b.val())).unwrap_or_default());
    }
    add(flat(decoder.anchors.val()));
    add(flat(decoder.offsets.val()));
    h.digest()
}
