//! Locating with a trained model: every frame's paths through the encoder, refined on the
//! learned map (per frame, or over its track), every member of an ensemble combined.

use burn::prelude::*;
use rfloc_csi::dataset::Dataset;

use crate::ambiguity::{basin_spread, grid_starts, SpreadSearch};
use crate::ensemble::{combine, to_reference};
use crate::error::LearnError;
use crate::features::{extract_paths, PathSets};
use crate::model::Model;

use crate::nets::to_vec;

/// One located frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Located {
    /// Position in the model frame (m).
    pub position: [f64; 3],
    /// Encoder output before refinement.
    pub encoder: [f64; 3],
    /// Per-axis 1-σ accuracy estimate (m): [`Located::fit_sigma_m`] grown by the disagreement
    /// between the encoder and the refined position (per-frame location; located over a track,
    /// `fit_sigma_m` alone). Label-free, so still optimistic where the map is wrong: anchoring
    /// floors it with what the labels show.
    pub accuracy_m: f64,
    /// Per-axis σ (m) of the range fit alone, range error × geometric dilution: the noise that
    /// changes from frame to frame (what smoothing averages).
    pub fit_sigma_m: f64,
    /// RMS distance (m) of the frame's other likely cost minima ([`crate::ambiguity`]); 0 when
    /// not searched (`refine` off). Part of `accuracy_m`.
    pub basin_spread_m: f64,
    /// Frames whose CSI this estimate used ([`PathSets::snapshots`]): its evidence is shared
    /// with that many neighbours, so a smoother must count it as 1/`snapshots` of a frame.
    pub snapshots: u16,
}

impl Model {
    /// Locates every frame of a dataset (observations only).
    pub fn locate(&self, ds: &Dataset, refine: bool) -> Result<Vec<Located>, LearnError> {
        let ps = self.paths_of(ds)?;
        Ok(self.locate_paths(&ps, refine))
    }

    /// The path sets of a dataset, extracted as this model's were; a dataset with another number
    /// of receivers is refused.
    fn paths_of(&self, ds: &Dataset) -> Result<PathSets, LearnError> {
        if ds.n_receivers() != self.meta.receivers.len() {
            return Err(LearnError::Mismatch(format!(
                "model has {} receivers, dataset {}",
                self.meta.receivers.len(),
                ds.n_receivers()
            )));
        }
        extract_paths(ds, &self.meta.path_options, &|_| {})
    }

    /// Encoder positions of path sets `[N][dims]`, in batches.
    pub fn encode(&self, ps: &PathSets) -> Vec<[f64; 3]> {
        let width = self.meta.encoder_inputs;
        let feats = self.meta.feature_norm.encode_all(ps);
        let dims = self.meta.dims;
        let mut out = Vec::with_capacity(ps.n_frames);
        for chunk in feats.chunks(4096 * width) {
            let b = chunk.len() / width;
            let x = Tensor::from_data(TensorData::new(chunk.to_vec(), [b, width]), &self.device);
            let y = to_vec(self.encoder.forward(x));
            for i in 0..b {
                let mut p = [0.0; 3];
                for a in 0..dims {
                    p[a] = y[i * dims + a] as f64;
                }
                out.push(p);
            }
        }
        out
    }

    /// Locates every frame of a dataset over its tracks: [`Model::locate`] with refinement, then
    /// [`crate::track::refine_tracks`] (timestamps and track ids only; no ground truth).
    pub fn locate_tracks(
        &self,
        ds: &Dataset,
        opts: &crate::track::TrackRefine,
    ) -> Result<Vec<Located>, LearnError> {
        let ps = self.paths_of(ds)?;
        let track_ids: Vec<i32> = (0..ds.n_frames()).map(|i| ds.track_of(i)).collect();
        let timestamps = ds.timestamps.to_vec();
        Ok(self.locate_paths_tracked(&ps, &timestamps, &track_ids, opts))
    }

    /// [`Model::locate_paths`] (refined), then the track refinement; an ensemble combines its
    /// members' tracked frames.
    pub fn locate_paths_tracked(
        &self,
        ps: &PathSets,
        timestamps: &[f64],
        track_ids: &[i32],
        opts: &crate::track::TrackRefine,
    ) -> Vec<Located> {
        self.over_members(|m| m.member_tracked(ps, timestamps, track_ids, opts))
    }

    /// Runs `f` on every member, moves the results into the ensemble's frame and combines them.
    fn over_members(&self, f: impl Fn(&Model) -> Vec<Located>) -> Vec<Located> {
        let first = f(self);
        if self.members.is_empty() {
            return first;
        }
        let mut runs = vec![first];
        for (m, e) in self.members.iter().zip(&self.meta.ensemble) {
            let mut l = f(m);
            to_reference(&mut l, &e.to_reference, self.meta.dims);
            runs.push(l);
        }
        combine(&runs, self.meta.dims)
    }

    fn member_tracked(
        &self,
        ps: &PathSets,
        timestamps: &[f64],
        track_ids: &[i32],
        opts: &crate::track::TrackRefine,
    ) -> Vec<Located> {
        let mut located = self.member_paths(ps, true);
        let mut pos: Vec<[f64; 3]> = located.iter().map(|l| l.position).collect();
        let map = self.meta.map();
        let view = map.view();
        let sigma = self.meta.metrics.range_rms_m.max(1e-3);
        let dil = crate::track::refine_tracks(
            ps,
            &view,
            self.meta.dims,
            self.meta.config.delta_m,
            sigma,
            timestamps,
            track_ids,
            &mut pos,
            opts,
        );
        for ((l, p), d) in located.iter_mut().zip(pos).zip(dil) {
            // `accuracy_m` stays the frame's own: the basin spread and the encoder's
            // disagreement say how far off this frame may be, and the smoother downstream
            // weighs frames by it.
            l.position = p;
            l.fit_sigma_m = sigma * d;
        }
        located
    }

    /// Locates path sets: encoder, then (optionally) analysis-by-synthesis refinement and the
    /// basin search that grows each frame's σ by the spread of its other likely minima. An
    /// ensemble locates with every member and combines ([`crate::ensemble`]).
    pub fn locate_paths(&self, ps: &PathSets, refine: bool) -> Vec<Located> {
        self.over_members(|m| m.member_paths(ps, refine))
    }

    /// [`Model::locate_paths`] for this member alone.
    fn member_paths(&self, ps: &PathSets, refine: bool) -> Vec<Located> {
        use rayon::prelude::*;
        let enc = self.encode(ps);
        let map = self.meta.map();
        let view = map.view();
        let sigma = self.meta.metrics.range_rms_m.max(1e-3);
        let (dims, delta) = (self.meta.dims, self.meta.config.delta_m);
        let search = SpreadSearch::default();
        let (lo, hi) = self.meta.search_box();
        let starts = grid_starts(lo, hi, search.grid_m, search.max_starts, 0.0);
        enc.par_iter()
            .enumerate()
            .map(|(n, &e)| {
                let (x, cost, dil) = crate::refine::refine_frame(
                    ps,
                    n,
                    &view,
                    e,
                    dims,
                    delta,
                    if refine { 20 } else { 0 },
                );
                // The range fit's σ cannot see a wrong map; where the encoder and the physics
                // disagree, the position is at least that uncertain (per axis: |x − e|² / d).
                // Measured in the model frame after a rigid fit, share of errors inside the 95%
                // radius: 11 → 54 % (demo), 5 → 39 % (factory-a), 8 → 59 % (factory-a grid).
                let (disc, spread) = if refine {
                    let disc = (0..dims).map(|a| (x[a] - e[a]).powi(2)).sum::<f64>() / dims as f64;
                    let spread =
                        basin_spread(ps, n, &view, x, cost, dims, delta, sigma, &starts, &search);
                    (disc, spread)
                } else {
                    (0.0, 0.0)
                };
                // per axis: the spread is a horizontal RMS distance over `dims` axes
                let spread_axis2 = spread * spread / dims.min(2) as f64;
                Located {
                    position: if refine { x } else { e },
                    encoder: e,
                    accuracy_m: ((sigma * dil).powi(2) + disc + spread_axis2).sqrt(),
                    fit_sigma_m: sigma * dil,
                    basin_spread_m: spread,
                    snapshots: ps.snapshots.get(n).copied().unwrap_or(1),
                }
            })
            .collect()
    }
}
