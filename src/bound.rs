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
    on_every_core(positions, |tx| {
        interfering_peb_at(&model, tx, noise_var, dims, unknowns)
    })
}

/// The interfering-paths bound with the map unknown too ([`rfloc_channel::crlb_map`]; with
/// `walls`, the anchors tied to the receivers and the faces, `ChannelModel::wall_structure`) over
/// frames of `scenario`'s hall at `positions`: what an efficient estimator that learns the map
/// from these frames could reach, evaluated as rfloc's learned positions are, after one rigid fit
/// over all frames.
pub struct SharedMapFigures {
    /// Per frame, the known-map bound (the same as [`interfering_bounds`]'), m.
    pub known: Vec<f64>,
    /// Per frame, the RMS error over the draws after the rigid fit, m (infinite where the frame's
    /// own links do not fix it).
    pub per_frame: Vec<f64>,
    /// The same after the product's smoother (with `track`): RMS over the draws of the smoothed
    /// draw minus the smoothed truth.
    pub tracked: Option<Vec<f64>>,
    /// The known-map bound through the same Monte Carlo and smoother (each frame's own error
    /// alone, weighed by its known-map bound): the comparison for `tracked`.
    pub tracked_known: Option<Vec<f64>>,
    /// The map's parameters the frames see (3 per virtual anchor and one offset per receiver;
    /// with `walls` each receiver's position, each face's offset and the offsets), the rigid
    /// motions removed, and null directions besides them.
    pub map_parameters: usize,
    pub gauge: usize,
    pub null_directions: usize,
    /// Virtual anchors in the map (receivers included): every image source a frame sees.
    pub anchors_modelled: usize,
    /// Per receiver (its line-of-sight anchor), the RMS horizontal and vertical error of its
    /// position after the same rigid fit, m (NaN where no frame sees it directly).
    pub receivers: Vec<[f64; 2]>,
    pub draws: usize,
}

/// [`SharedMapFigures`] by Monte Carlo: `draws` draws of every frame's error from the bound's
/// joint Gaussian (the map's error shared by all frames), each aligned to the truth by one
/// rigid fit over the frames that their links fix, weighed by each frame's bound (as `rfloc eval
/// --align rigid` aligns rfloc's). The per-frame figure is the RMS over the draws, read like a
/// bound by [`efficient_quantile`].
///
/// With `track` every draw also goes through the product's smoother (no gating), weighed by each
/// frame's *known-map* bound, and so does each frame's own error alone: the two then differ by
/// the map's errors only. What the smoother does to the true walk itself (corners cut under the
/// walker's prior) is taken off both. Without that the figure would be the smoother's lag; with
/// it, heavier smoothing always looks better, which is why both runs share one set of weights.
/// `timestamps` and `track_ids` belong to the frames.
#[allow(clippy::too_many_arguments)]
pub fn shared_map_bounds(
    scenario: &Scenario,
    positions: &[[f64; 3]],
    timestamps: &[f64],
    track_ids: Option<&[i32]>,
    noise_var: f64,
    dims: usize,
    unknowns: Unknowns,
    walls: bool,
    draws: usize,
    seed: u64,
    track: bool,
) -> anyhow::Result<SharedMapFigures> {
    let model = ChannelModel::new(scenario);
    let links: Vec<Vec<rfloc_channel::MapLink>> =
        on_every_core(positions, |tx| model.map_links_at(tx, noise_var, unknowns));
    let anchors = model.anchor_positions();
    let anchors_modelled = {
        let mut seen: Vec<usize> = links
            .iter()
            .flatten()
            .flat_map(|l| l.anchors.iter().copied())
            .collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    let structure = walls.then(|| model.wall_structure(dims));
    let bound = rfloc_channel::SharedMapBound::with_structure(
        &links,
        &anchors,
        scenario.scene.receivers.len(),
        dims,
        structure.as_ref(),
    )
    .context("the shared-map bound")?;
    drop(links);
    let n = positions.len();
    let adims = if dims == 3 {
        rfloc_anchor::Dims::Three
    } else {
        rfloc_anchor::Dims::Two
    };
    let located: Vec<usize> = (0..n).filter(|&i| bound.identifiable(i)).collect();
    if located.len() < 3 {
        bail!("fewer than 3 frames are located by their own links: nothing to align");
    }
    let sigma: Vec<f64> = (0..n).map(|i| axis_sigma(bound.peb(i), dims)).collect();
    let weights: Vec<f64> = located
        .iter()
        .map(|&i| 1.0 / (sigma[i] * sigma[i]))
        .collect();
    let frames: Vec<usize> = (0..n).collect();
    let opts = rfloc_anchor::track::TrackOptions {
        dims: adims,
        gate_prob: 1.0 - 1e-12,
        ..Default::default()
    };
    let horizontal =
        |a: [f64; 3], b: [f64; 3]| -> f64 { (0..dims).map(|d| (a[d] - b[d]).powi(2)).sum::<f64>() };
    let mut sq = vec![0.0f64; n];
    let mut sq_tracked = vec![0.0f64; n];
    let receivers: Vec<usize> = (0..scenario.scene.receivers.len())
        .map(|r| model.anchor_base(r, 0))
        .collect();
    let mut sq_rx = vec![[0.0f64; 2]; receivers.len()];
    // the smoother is linear in its measurements: smoothing the true positions gives what it
    // does to the walk itself (corners cut under the walker's prior), which is no part of a
    // bound and is taken off every draw's smoothed positions
    let known_sigma: Vec<f64> = (0..n)
        .map(|i| axis_sigma(bound.known_map_peb(i), dims))
        .collect();
    let smooth = |xyz: &[[f64; 3]], sigma: &[f64]| -> anyhow::Result<Vec<[f64; 3]>> {
        Ok(
            rfloc_anchor::track::track_frames(&frames, xyz, sigma, timestamps, track_ids, &opts)
                .context("smoothing over the tracks")?
                .iter()
                .map(|p| p.xyz)
                .collect(),
        )
    };
    let walk = if track {
        smooth(positions, &known_sigma)?
    } else {
        Vec::new()
    };
    let mut sq_tracked_known = vec![0.0f64; n];
    for k in 0..draws.max(1) {
        let draw = bound.draw_parts(seed, k as u64);
        let map_error = &draw.anchors;
        let add = |p: &[f64; 3], d: &[f64; 3]| [p[0] + d[0], p[1] + d[1], p[2] + d[2]];
        let own: Vec<[f64; 3]> = positions
            .iter()
            .zip(&draw.own)
            .map(|(p, d)| add(p, d))
            .collect();
        let est: Vec<[f64; 3]> = own
            .iter()
            .zip(&draw.through_map)
            .map(|(p, d)| add(p, d))
            .collect();
        let src: Vec<[f64; 3]> = located.iter().map(|&i| est[i]).collect();
        let dst: Vec<[f64; 3]> = located.iter().map(|&i| positions[i]).collect();
        let fit = rfloc_anchor::align::fit_rigid(&src, &dst, Some(&weights), adims, 0.0)
            .context("aligning a draw")?;
        let aligned: Vec<[f64; 3]> = (0..n)
            .map(|i| {
                if bound.identifiable(i) {
                    fit.transform.apply(est[i])
                } else {
                    positions[i]
                }
            })
            .collect();
        for &i in &located {
            sq[i] += horizontal(aligned[i], positions[i]);
        }
        for (s, &a) in sq_rx.iter_mut().zip(&receivers) {
            let Some(d) = map_error[a] else { continue };
            let v = anchors[a];
            let got = fit.transform.apply([v[0] + d[0], v[1] + d[1], v[2] + d[2]]);
            let e: Vec<f64> = (0..3).map(|i| got[i] - v[i]).collect();
            s[0] += e[0] * e[0] + e[1] * e[1];
            s[1] += e[2] * e[2];
        }
        if track {
            let out = smooth(&aligned, &known_sigma)?;
            for (s, (p, w)) in sq_tracked.iter_mut().zip(out.iter().zip(&walk)) {
                *s += horizontal(*p, *w);
            }
            // the known map through the same Monte Carlo: each frame's own error alone
            let own_located: Vec<[f64; 3]> = (0..n)
                .map(|i| {
                    if bound.identifiable(i) {
                        own[i]
                    } else {
                        positions[i]
                    }
                })
                .collect();
            let out = smooth(&own_located, &known_sigma)?;
            for (s, (p, w)) in sq_tracked_known.iter_mut().zip(out.iter().zip(&walk)) {
                *s += horizontal(*p, *w);
            }
        }
    }
    let k = draws.max(1) as f64;
    let per_frame = (0..n)
        .map(|i| {
            if bound.identifiable(i) {
                (sq[i] / k).sqrt()
            } else {
                f64::INFINITY
            }
        })
        .collect();
    Ok(SharedMapFigures {
        known: (0..n).map(|i| bound.known_map_peb(i)).collect(),
        per_frame,
        tracked: track.then(|| sq_tracked.iter().map(|s| (s / k).sqrt()).collect()),
        tracked_known: track.then(|| sq_tracked_known.iter().map(|s| (s / k).sqrt()).collect()),
        map_parameters: bound.parameters,
        gauge: bound.gauge,
        null_directions: bound.null_directions,
        anchors_modelled,
        receivers: sq_rx
            .iter()
            .map(|s| [(s[0] / k).sqrt(), (s[1] / k).sqrt()])
            .collect(),
        draws: draws.max(1),
    })
}

/// `f` at every position, the positions split over the machine's cores (in order).
fn on_every_core<T: Send>(positions: &[[f64; 3]], f: impl Fn([f64; 3]) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = positions.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = positions
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|&tx| f(tx)).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bound worker panicked"))
            .collect()
    })
}

/// A frame's bound as the smoother's per-axis measurement σ: `PEB/√dims`, and 1 km (no
/// information) where the frame's links do not fix it.
fn axis_sigma(peb: f64, dims: usize) -> f64 {
    if peb.is_finite() {
        (peb / (dims as f64).sqrt()).max(1e-6)
    } else {
        1e3
    }
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
    let sigma: Vec<f64> = pebs.iter().map(|&p| axis_sigma(p, dims)).collect();
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
