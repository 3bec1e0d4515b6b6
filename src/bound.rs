//! Position error bounds for the CLI and the reports: the channel's per-frame bounds
//! (`rfloc_channel::crlb`) computed over many frames, and the same bounds after the product's
//! smoother (`rfloc_anchor::track`).

use anyhow::{bail, Context};
use rfloc_channel::simulate::{interfering_peb_at, ChannelModel};
use rfloc_channel::{Scenario, Unknowns};
use rfloc_csi::dataset::Dataset;

/// The per-subcarrier noise variance a simulated dataset records (`meta.json` `noise`).
pub fn simulated_noise_variance(ds: &Dataset) -> anyhow::Result<f64> {
    ds.meta
        .noise
        .as_ref()
        .and_then(|v| v.get("noise_variance"))
        .and_then(|v| v.as_f64())
        .context("meta.json gives no noise_variance (a simulated dataset has one)")
}

/// The true positions of `frames` in a dataset.
pub fn true_positions(ds: &Dataset, frames: &[usize]) -> anyhow::Result<Vec<[f64; 3]>> {
    let Some(pos) = ds.truth.positions.as_ref() else {
        bail!("the bound needs the true positions (positions.npy)");
    };
    if let Some(&f) = frames.iter().find(|&&f| f >= pos.nrows()) {
        bail!("frame {f} is out of range ({} frames)", pos.nrows());
    }
    Ok(frames
        .iter()
        .map(|&f| [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]])
        .collect())
}

/// The interfering-paths bound (`rfloc_channel::interfering_peb_at`: every specular path of
/// `scenario`'s hall, gains and clocks known as `unknowns` says, the dense multipath as coloured
/// noise) at each
/// of `positions`, with per-subcarrier noise variance `noise_var`. The positions are split over
/// the machine's cores.
pub fn interfering_bounds(
    scenario: &Scenario,
    positions: &[[f64; 3]],
    noise_var: f64,
    dims: usize,
    unknowns: Unknowns,
) -> Vec<f64> {
    let model = ChannelModel::new(scenario);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = positions.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = positions
            .chunks(chunk)
            .map(|part| {
                let model = &model;
                s.spawn(move || {
                    part.iter()
                        .map(|&tx| interfering_peb_at(model, tx, noise_var, dims, unknowns))
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bound worker panicked"))
            .collect()
    })
}

/// Each frame's bound smoothed over its track with the product's smoother
/// (`rfloc_anchor::track`, default options, no gating): the bound is the frame's measurement σ
/// (`σ = PEB/√dims` per axis; a frame without a finite bound carries no information), and the
/// smoother's posterior σ comes back as a bound (`√dims · σ`). `pebs[i]` belongs to
/// `frames[i]`. The measurements are the true positions, so no frame is gated: what tracking could
/// reach if every frame met its bound, under the walker's motion model.
pub fn tracked_bound(
    ds: &Dataset,
    frames: &[usize],
    pebs: &[f64],
    dims: usize,
) -> anyhow::Result<Vec<f64>> {
    let xyz = true_positions(ds, frames)?;
    let root = (dims as f64).sqrt();
    let sigma: Vec<f64> = pebs
        .iter()
        .map(|p| {
            if p.is_finite() {
                (p / root).max(1e-6)
            } else {
                1e3
            }
        })
        .collect();
    let opts = rfloc_anchor::track::TrackOptions {
        dims: if dims == 3 {
            rfloc_anchor::Dims::Three
        } else {
            rfloc_anchor::Dims::Two
        },
        gate_prob: 1.0 - 1e-12,
        ..Default::default()
    };
    let ts = ds.timestamps.to_vec();
    let ids = ds.track_ids.as_ref().map(|t| t.to_vec());
    let out = rfloc_anchor::track::track_frames(frames, &xyz, &sigma, &ts, ids.as_deref(), &opts)
        .context("smoothing the bound over the tracks")?;
    Ok(out.iter().map(|p| p.sigma * root).collect())
}

/// The `q` quantile of the horizontal error of an *efficient* estimator over these frames: each
/// frame's error a circular Gaussian whose RMS radius is its bound, so its radius is Rayleigh
/// with `P(r ≤ ρ) = 1 − exp(−ρ²/PEB²)`; the frames' mixture is solved for `q` by bisection. A
/// frame without a finite bound never falls inside. This turns a bound into the CEP50 (`q` =
/// 0.5) and CE95 (0.95) it allows, the figures rfloc's own errors are reported in. (The radius
/// of an anisotropic error differs a little: this is the isotropic reading of the bound.)
pub fn efficient_quantile(pebs: &[f64], q: f64) -> f64 {
    if pebs.is_empty() {
        return f64::NAN;
    }
    let cdf = |rho: f64| -> f64 {
        pebs.iter()
            .map(|p| {
                if p.is_finite() && *p > 0.0 {
                    1.0 - (-(rho / p).powi(2)).exp()
                } else if p.is_finite() {
                    1.0
                } else {
                    0.0
                }
            })
            .sum::<f64>()
            / pebs.len() as f64
    };
    let mut hi = pebs
        .iter()
        .copied()
        .filter(|p| p.is_finite())
        .fold(0.0f64, f64::max)
        * 10.0;
    if cdf(hi) < q {
        return f64::INFINITY;
    }
    let mut lo = 0.0;
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::efficient_quantile;

    /// One bound for every frame: the Rayleigh quantiles `PEB·√(−ln(1 − q))`; frames without a
    /// bound push the quantiles out, to infinity once they are more than `1 − q` of the frames.
    #[test]
    fn efficient_quantiles_are_the_rayleigh_ones() {
        let p = vec![0.2; 10];
        for q in [0.5, 0.95] {
            let want = 0.2 * (-(1.0f64 - q).ln()).sqrt();
            assert!((efficient_quantile(&p, q) - want).abs() < 1e-12, "{q}");
        }
        let mut with_inf = p.clone();
        with_inf.push(f64::INFINITY);
        assert!(efficient_quantile(&with_inf, 0.5) > efficient_quantile(&p, 0.5));
        assert!(efficient_quantile(&with_inf, 0.95).is_infinite());
    }
}
