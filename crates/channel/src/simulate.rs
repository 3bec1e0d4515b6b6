//! Scenario → dataset: motion, specular paths, dense multipath, OFDM synthesis, noise and
//! hardware impairments, written as the exchange format with full ground truth.
//!
//! Per frame n, receiver r, antenna a, subcarrier k (design note §1):
//!
//! `H[n,r,a,k] = g_{n,r} e^{−j(2π f_k δ_{n,r} + φ_{n,r})} (Σ_p α_p e^{−j2π (f_c+f_k) τ_p} + w)`,
//!
//! specular paths `p` from the image-source method plus the dense-multipath paths,
//! `w ~ CN(0, σ²)` from one fixed noise floor, `δ_{n,r} = δ_r (+ U(0, δ_max) per frame)`,
//! `φ_{n,r} = φ_r (+ U(0, 2π))`, `g_{n,r} = 1 (or 10^{U(−A, A)/20})` — the bracketed per-frame
//! terms in commodity mode only. The AGC gain scales the noise too (it acts after the front end).
//!
//! Noise floor: `σ² = P_ref / 10^{SNR/10}`, where `P_ref` is the median over links of the mean
//! per-subcarrier power `mean_k |H[k]|²` before impairments (reference "median"), or
//! `(λ / (4π d_ref))²` (reference "distance").
//!
//! Determinism: one ChaCha8 generator per concern (receiver offsets, motion, dense multipath,
//! per-frame impairments, noise), all seeded from the one seed, consumed in a fixed loop order.

use ndarray::{Array1, Array2, Array3, Array4};
use num_complex::{Complex32, Complex64};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rfloc_csi::dataset::{Dataset, DatasetMeta, ReceiverMeta, Truth};

use crate::crlb::{
    delay_crlb_s, link_delay_information, link_position_information, peb, peb_from_information,
    DenseMultipath, LinkPath, RangeAnchor, Unknowns,
};
use crate::crlb_map::{MapLink, MapStructure};
use crate::error::ChannelError;
use crate::geometry::distance;
use crate::image_sources::{AnchorSet, Path, SPEED_OF_LIGHT};
use crate::motion::Trajectory;
use crate::ofdm::Synthesizer;
use crate::scenario::{NoiseReference, Scenario};

/// The deterministic part of a scenario's channel: virtual anchors of every receiver antenna.
#[derive(Debug, Clone)]
pub struct ChannelModel<'a> {
    pub scenario: &'a Scenario,
    /// `anchors[r][a]`.
    pub anchors: Vec<Vec<AnchorSet>>,
}

impl<'a> ChannelModel<'a> {
    pub fn new(scenario: &'a Scenario) -> ChannelModel<'a> {
        let scene = &scenario.scene;
        let anchors = scene
            .receivers
            .iter()
            .map(|r| {
                (0..r.antenna_offsets.len())
                    .map(|a| AnchorSet::new(scene, r.antenna_position(a), scenario.max_order))
                    .collect()
            })
            .collect();
        ChannelModel { scenario, anchors }
    }

    /// Every virtual anchor of every receiver antenna in one list (receiver by receiver, antenna
    /// by antenna, in [`AnchorSet`] order): the map of [`crate::crlb_map`].
    pub fn anchor_positions(&self) -> Vec<[f64; 3]> {
        self.anchors
            .iter()
            .flatten()
            .flat_map(|set| set.anchors.iter().map(|v| v.position))
            .collect()
    }

    /// Where antenna `a` of receiver `r`'s anchors start in [`ChannelModel::anchor_positions`].
    pub fn anchor_base(&self, r: usize, a: usize) -> usize {
        let before: usize = self.anchors[..r]
            .iter()
            .flatten()
            .map(|set| set.anchors.len())
            .sum();
        before
            + self.anchors[r][..a]
                .iter()
                .map(|set| set.anchors.len())
                .sum::<usize>()
    }

    /// The map as walls of known orientation ([`MapStructure`]): `θ` holds each receiver's
    /// position (3 per receiver, its antennas at their fixed offsets) and each face's offset along
    /// its normal (one per face of the scene), and every anchor is its receiver antenna mirrored
    /// face by face, `V = H_k⋯H_1 (r + o_a) + Σ_i H_k⋯H_{i+1} 2 d_i n_i` with `H = I − 2nnᵀ` and
    /// `d = n·p` on the face. Only the translations stay free (`dims` of them).
    pub fn wall_structure(&self, dims: usize) -> MapStructure {
        let scene = &self.scenario.scene;
        let n_rx = scene.receivers.len();
        let faces = &scene.faces;
        let face_param = |f: usize| 3 * n_rx + f;
        let mut jacobian = Vec::new();
        for (r, sets) in self.anchors.iter().enumerate() {
            for set in sets {
                for v in &set.anchors {
                    // ∂V/∂r = H_k⋯H_1, ∂V/∂d_i = H_k⋯H_{i+1} 2 n_i (faces[0] reflects first)
                    let mut dr = [[0.0f64; 3]; 3];
                    for (i, row) in dr.iter_mut().enumerate() {
                        row[i] = 1.0;
                    }
                    let mut dd: Vec<(usize, [f64; 3])> = Vec::new();
                    for &f in &v.faces {
                        let n = faces[f].normal;
                        let h = |x: [f64; 3]| -> [f64; 3] {
                            let c = 2.0 * (n[0] * x[0] + n[1] * x[1] + n[2] * x[2]);
                            [x[0] - c * n[0], x[1] - c * n[1], x[2] - c * n[2]]
                        };
                        // columns of dr and every earlier face's column go through H
                        let cols: Vec<[f64; 3]> =
                            (0..3).map(|c| h([dr[0][c], dr[1][c], dr[2][c]])).collect();
                        for (c, col) in cols.iter().enumerate() {
                            for (row, x) in dr.iter_mut().zip(col) {
                                row[c] = *x;
                            }
                        }
                        for (_, col) in dd.iter_mut() {
                            *col = h(*col);
                        }
                        dd.push((f, [2.0 * n[0], 2.0 * n[1], 2.0 * n[2]]));
                    }
                    for axis in 0..3 {
                        let mut row: Vec<(usize, f64)> =
                            (0..3).map(|c| (3 * r + c, dr[axis][c])).collect();
                        for (f, col) in &dd {
                            row.push((face_param(*f), col[axis]));
                        }
                        row.retain(|&(_, x)| x != 0.0);
                        jacobian.push(row);
                    }
                }
            }
        }
        let parameters = 3 * n_rx + faces.len();
        let gauge = (0..dims)
            .map(|d| {
                let mut g = vec![0.0; parameters];
                for r in 0..n_rx {
                    g[3 * r + d] = 1.0;
                }
                for (f, face) in faces.iter().enumerate() {
                    g[face_param(f)] = face.normal[d];
                }
                g
            })
            .collect();
        MapStructure {
            parameters,
            jacobian,
            gauge,
        }
    }

    /// One link of the interfering-paths bound at `tx`: its specular paths as
    /// [`LinkPath`]s (carrier phase in the gain, `∂τ/∂x` from each path's anchor), each path's
    /// anchor index in the link's [`AnchorSet`], and the dense multipath as coloured noise (the
    /// power `simulate` gives it: a share of the specular power).
    pub fn link_paths(
        &self,
        r: usize,
        a: usize,
        tx: [f64; 3],
    ) -> (Vec<LinkPath>, Vec<usize>, Option<DenseMultipath>) {
        let carrier = self.scenario.plan.carrier_hz();
        let dif = self.scenario.diffuse;
        let set = &self.anchors[r][a];
        let paths = self.paths(r, a, tx);
        let mut link = Vec::with_capacity(paths.len());
        let mut index = Vec::with_capacity(paths.len());
        for p in &paths {
            let v = set.anchors[p.anchor_index].position;
            let d = [tx[0] - v[0], tx[1] - v[1], tx[2] - v[2]];
            let n = distance(tx, v).max(1e-9) * SPEED_OF_LIGHT;
            link.push(LinkPath {
                delay_s: p.delay_s,
                gain: p.gain
                    * Complex64::from_polar(1.0, -std::f64::consts::TAU * carrier * p.delay_s),
                delay_gradient: [d[0] / n, d[1] / n, d[2] / n],
            });
            index.push(p.anchor_index);
        }
        let dense = (dif.paths > 0)
            .then(|| paths.first())
            .flatten()
            .map(|first| DenseMultipath {
                first_arrival_s: first.delay_s,
                decay_s: dif.decay_s,
                power: paths.iter().map(|p| p.gain.norm_sqr()).sum::<f64>()
                    * 10f64.powf(dif.power_db / 10.0),
            });
        (link, index, dense)
    }

    /// The links at `tx` for the shared-map bound ([`crate::crlb_map`]): every receiver
    /// antenna's paths with their delays' information ([`link_delay_information`]), anchors
    /// indexed into [`ChannelModel::anchor_positions`].
    pub fn map_links_at(&self, tx: [f64; 3], noise_var: f64, unknowns: Unknowns) -> Vec<MapLink> {
        let offsets = self.scenario.plan.offsets_hz();
        let mut out = Vec::new();
        for (r, sets) in self.anchors.iter().enumerate() {
            for a in 0..sets.len() {
                let (link, index, dense) = self.link_paths(r, a, tx);
                if link.is_empty() {
                    continue;
                }
                let base = self.anchor_base(r, a);
                out.push(MapLink {
                    receiver: r,
                    anchors: index.iter().map(|i| base + i).collect(),
                    gradients: link.iter().map(|p| p.delay_gradient).collect(),
                    information: link_delay_information(offsets, &link, noise_var, unknowns, dense),
                });
            }
        }
        out
    }

    /// Specular paths from `tx` to antenna `a` of receiver `r`, sorted by delay.
    pub fn paths(&self, r: usize, a: usize, tx: [f64; 3]) -> Vec<Path> {
        let mut p =
            self.anchors[r][a].paths(&self.scenario.scene, tx, self.scenario.plan.carrier_hz());
        p.sort_by(|x, y| x.delay_s.total_cmp(&y.delay_s));
        p
    }
}

const STREAM_RECEIVERS: u64 = 1;
const STREAM_MOTION: u64 = 2;
const STREAM_DIFFUSE: u64 = 3;
const STREAM_FRAMES: u64 = 4;
const STREAM_NOISE: u64 = 5;

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// The transmitter positions a scenario produces for a seed (the same as in [`simulate`]).
pub fn trajectory(
    scenario: &Scenario,
    seed: u64,
    frames: Option<usize>,
) -> Result<Trajectory, ChannelError> {
    scenario
        .motion
        .sample(&scenario.scene, &mut rng(seed, STREAM_MOTION), frames)
}

fn cn(rng: &mut ChaCha8Rng, var: f64) -> Complex64 {
    let s = (var / 2.0).sqrt();
    let re: f64 = rng.sample(StandardNormal);
    let im: f64 = rng.sample(StandardNormal);
    Complex64::new(re * s, im * s)
}

/// Simulates a scenario: CSI `[N, R, A, K]`, timestamps, track ids and full ground truth
/// (positions, receiver positions, the `truth_paths` earliest specular paths of antenna 0 of each
/// receiver: delays = times of flight without receiver offsets, gains without the propagation
/// phase). Deterministic for a seed. `frames` overrides the scenario's frame count.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    frames: Option<usize>,
) -> Result<Dataset, ChannelError> {
    let traj = trajectory(scenario, seed, frames)?;
    let n = traj.len();
    if n == 0 {
        return Err(ChannelError::Motion("no frames to simulate".into()));
    }
    let scene = &scenario.scene;
    let model = ChannelModel::new(scenario);
    let n_rx = scene.receivers.len();
    let n_ant = scene
        .receivers
        .iter()
        .map(|r| r.antenna_offsets.len())
        .max()
        .unwrap_or(1);
    if scene
        .receivers
        .iter()
        .any(|r| r.antenna_offsets.len() != n_ant)
    {
        return Err(ChannelError::invalid(
            "receivers",
            "all receivers need the same number of antennas (one csi array)",
        ));
    }
    let k = scenario.plan.len();
    let p_max = scenario.truth_paths;
    let mut synth = Synthesizer::new(scenario.plan.clone());
    let mut diffuse_rng = rng(seed, STREAM_DIFFUSE);

    let mut clean = Array4::<Complex64>::zeros((n, n_rx, n_ant, k));
    let mut delays = Array3::<f64>::from_elem((n, n_rx, p_max), f64::NAN);
    let mut gains = Array3::<Complex32>::zeros((n, n_rx, p_max));
    let mut link_power = Vec::with_capacity(n * n_rx * n_ant);
    let mut d_buf: Vec<f64> = Vec::new();
    let mut g_buf: Vec<Complex64> = Vec::new();
    let mut h = vec![Complex64::new(0.0, 0.0); k];
    for (f, &tx) in traj.positions.iter().enumerate() {
        for r in 0..n_rx {
            let mut diffuse_delays: Vec<f64> = Vec::new();
            for a in 0..n_ant {
                let paths = model.paths(r, a, tx);
                if a == 0 {
                    for (i, p) in paths.iter().take(p_max).enumerate() {
                        delays[[f, r, i]] = p.delay_s;
                        gains[[f, r, i]] = Complex32::new(p.gain.re as f32, p.gain.im as f32);
                    }
                }
                d_buf.clear();
                g_buf.clear();
                d_buf.extend(paths.iter().map(|p| p.delay_s));
                g_buf.extend(paths.iter().map(|p| p.gain));
                // dense multipath after the first arrival: same delays on every antenna of the
                // receiver, independent gains (uncorrelated diffuse field at the array)
                let dif = scenario.diffuse;
                if dif.paths > 0 && !paths.is_empty() {
                    if a == 0 {
                        let t0 = paths[0].delay_s;
                        diffuse_delays = (0..dif.paths)
                            .map(|_| t0 - dif.decay_s * (1.0 - diffuse_rng.random::<f64>()).ln())
                            .collect();
                    }
                    let spec: f64 = paths.iter().map(|p| p.gain.norm_sqr()).sum();
                    let var = spec * 10f64.powf(dif.power_db / 10.0) / dif.paths as f64;
                    for &t in &diffuse_delays {
                        d_buf.push(t);
                        g_buf.push(cn(&mut diffuse_rng, var));
                    }
                }
                h.iter_mut().for_each(|x| *x = Complex64::new(0.0, 0.0));
                synth.add_paths(&d_buf, &g_buf, &mut h);
                link_power.push(h.iter().map(|x| x.norm_sqr()).sum::<f64>() / k as f64);
                for (kk, x) in h.iter().enumerate() {
                    clean[[f, r, a, kk]] = *x;
                }
            }
        }
    }

    let noise_var = noise_variance(scenario, &link_power);

    // receiver offsets, then per-frame impairments and noise
    let mut rx_rng = rng(seed, STREAM_RECEIVERS);
    let im = scenario.impairments;
    let rx_offsets: Vec<(f64, f64)> = (0..n_rx)
        .map(|_| {
            let d = rx_rng.random::<f64>() * im.receiver_delay_max_s;
            let p = if im.receiver_phase {
                rx_rng.random_range(0.0..std::f64::consts::TAU)
            } else {
                0.0
            };
            (d, p)
        })
        .collect();
    let mut frame_rng = rng(seed, STREAM_FRAMES);
    let mut noise_rng = rng(seed, STREAM_NOISE);
    let mut csi = Array4::<Complex32>::zeros((n, n_rx, n_ant, k));
    for f in 0..n {
        for (r, &(d0, p0)) in rx_offsets.iter().enumerate() {
            let (mut d, mut ph, mut g) = (d0, p0, 1.0);
            if !scenario.synchronized {
                d += frame_rng.random::<f64>() * im.timing_offset_max_s;
                ph += frame_rng.random_range(0.0..std::f64::consts::TAU);
                g = 10f64.powf(frame_rng.random_range(-im.agc_db..=im.agc_db) / 20.0);
            }
            for a in 0..n_ant {
                for (kk, x) in h.iter_mut().enumerate() {
                    *x = clean[[f, r, a, kk]];
                }
                synth.apply_offset(d, ph, 1.0, &mut h);
                for (kk, x) in h.iter().enumerate() {
                    let w = if noise_var > 0.0 {
                        cn(&mut noise_rng, noise_var)
                    } else {
                        Complex64::new(0.0, 0.0)
                    };
                    let y = (x + w) * g;
                    csi[[f, r, a, kk]] = Complex32::new(y.re as f32, y.im as f32);
                }
            }
        }
    }

    let receivers = scene
        .receivers
        .iter()
        .map(|r| ReceiverMeta {
            id: r.id.clone(),
            position: Some(r.position),
            antenna_offsets: r.antenna_offsets.clone(),
        })
        .collect();
    let mut meta = DatasetMeta::new(
        scenario.name.clone(),
        scenario.plan.carrier_hz(),
        scenario.plan.offsets_hz().to_vec(),
        scenario.synchronized,
        receivers,
    );
    let mut noise = serde_json::Map::new();
    if let Some(s) = scenario.noise.snr_db_per_subcarrier {
        noise.insert("snr_db_per_subcarrier".into(), s.into());
        noise.insert(
            "reference".into(),
            match scenario.noise.reference {
                NoiseReference::Median => "median link".into(),
                NoiseReference::Distance(d) => format!("free-space LoS at {d} m").into(),
            },
        );
    }
    noise.insert("noise_variance".into(), noise_var.into());
    meta.noise = Some(serde_json::Value::Object(noise));
    meta.notes = Some(format!(
        "Simulated by rfloc-channel (image sources up to order {}, no diffraction; {} dense-multipath \
         paths per link at {} dB, decay {} ns; {}; seed {seed}). {}",
        scenario.max_order,
        scenario.diffuse.paths,
        scenario.diffuse.power_db,
        scenario.diffuse.decay_s * 1e9,
        if scenario.synchronized {
            "synchronized: fixed delay/phase per receiver"
        } else {
            "commodity: per-frame timing offset, carrier phase and AGC gain"
        },
        scenario.description
    ));
    meta.extra
        .insert("scenario".into(), scenario.name.clone().into());
    meta.extra.insert("seed".into(), seed.into());

    let positions = Array2::from_shape_fn((n, 3), |(i, j)| traj.positions[i][j]);
    let ds = Dataset {
        meta,
        csi,
        timestamps: Array1::from(traj.timestamps),
        track_ids: Some(Array1::from(traj.track_ids)),
        truth: Truth {
            positions: Some(positions),
            paths_delay_s: Some(delays),
            paths_gain: Some(gains),
        },
    };
    ds.validate()
        .map_err(|e| ChannelError::Dataset(e.to_string()))?;
    Ok(ds)
}

/// Noise variance per subcarrier for a scenario, given the links' mean per-subcarrier powers
/// (before impairments). 0 when the scenario is noiseless.
pub fn noise_variance(scenario: &Scenario, link_power: &[f64]) -> f64 {
    let Some(snr_db) = scenario.noise.snr_db_per_subcarrier else {
        return 0.0;
    };
    let p_ref = match scenario.noise.reference {
        NoiseReference::Median => {
            let mut v: Vec<f64> = link_power.to_vec();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                return 0.0;
            }
            v[v.len() / 2]
        }
        NoiseReference::Distance(d) => {
            let lambda = SPEED_OF_LIGHT / scenario.plan.carrier_hz();
            (lambda / (4.0 * std::f64::consts::PI * d)).powi(2)
        }
    };
    p_ref / 10f64.powf(snr_db / 10.0)
}

/// Which paths enter the position error bound, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PebPaths {
    /// Each receiver's line-of-sight path, a range with the single-path bound.
    #[default]
    LineOfSight,
    /// Also every visible reflection, each a range to its virtual anchor as if it were alone
    /// (resolvable).
    Resolvable,
    /// Every specular path of a link in one model, gains (and clock) known as the field says, so
    /// that paths close in delay share their information, and the scenario's dense multipath as
    /// coloured noise ([`crate::crlb::link_position_information`]).
    Interfering(Unknowns),
}

/// Which measurements enter the position error bound.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PebOptions {
    pub paths: PebPaths,
    /// 2 (height known) or 3.
    pub dims: usize,
}

/// PEB (m) of a transmitter at `tx` in a scenario with noise variance `noise_var` (per
/// subcarrier). [`PebPaths::LineOfSight`] and [`PebPaths::Resolvable`]: every antenna's
/// line-of-sight path (and each visible reflection via its virtual anchor) is a range with the
/// single-path CRLB `c σ_τ(|α|²/σ²)`. [`PebPaths::Interfering`]: [`interfering_peb_at`].
pub fn peb_at(model: &ChannelModel, tx: [f64; 3], noise_var: f64, opts: PebOptions) -> f64 {
    if let PebPaths::Interfering(unknowns) = opts.paths {
        return interfering_peb_at(model, tx, noise_var, opts.dims, unknowns);
    }
    let offsets = model.scenario.plan.offsets_hz();
    let mut anchors = Vec::new();
    for (r, sets) in model.anchors.iter().enumerate() {
        for (a, set) in sets.iter().enumerate() {
            for p in model.paths(r, a, tx) {
                if !p.los && opts.paths == PebPaths::LineOfSight {
                    continue;
                }
                let snr = if noise_var > 0.0 {
                    p.gain.norm_sqr() / noise_var
                } else {
                    f64::INFINITY
                };
                let sigma = SPEED_OF_LIGHT * delay_crlb_s(offsets, snr);
                anchors.push(RangeAnchor {
                    position: set.anchors[p.anchor_index].position,
                    sigma_m: sigma.max(1e-12),
                });
            }
        }
    }
    peb(tx, &anchors, opts.dims)
}

/// PEB (m) with interfering paths: each antenna's link is every specular path, its delay tied to
/// `tx` through its virtual anchor and its gain known as `unknowns` says, plus the scenario's
/// dense multipath as coloured noise (its exponential profile from the link's first arrival, with
/// the power [`simulate`] gives it). A receiver's timing offset is known (synchronized,
/// calibrated receivers, as in the line-of-sight bound) unless `unknowns.clock_offset`, where it
/// is unknown per link and frame. Zero for zero noise.
pub fn interfering_peb_at(
    model: &ChannelModel,
    tx: [f64; 3],
    noise_var: f64,
    dims: usize,
    unknowns: Unknowns,
) -> f64 {
    if noise_var.is_nan() || noise_var <= 0.0 {
        return 0.0;
    }
    let offsets = model.scenario.plan.offsets_hz();
    let mut j = [[0.0f64; 3]; 3];
    for (r, sets) in model.anchors.iter().enumerate() {
        for a in 0..sets.len() {
            let (link, _, dense) = model.link_paths(r, a, tx);
            let jl = link_position_information(offsets, &link, noise_var, unknowns, dense);
            for (row, lrow) in j.iter_mut().zip(jl) {
                for (x, y) in row.iter_mut().zip(lrow) {
                    *x += y;
                }
            }
        }
    }
    peb_from_information(&j, dims)
}

/// PEB per frame of a dataset from its ground truth (positions, receiver positions, path delays
/// and gains): line-of-sight paths only (a dataset does not say which wall a reflection came
/// from). A path is line of sight when its delay equals `|x − r|/c` within 1 mm. The noise
/// variance comes from `meta.noise.noise_variance`, else from `snr_db_per_subcarrier(_median)` and
/// the median link power of the true paths.
pub fn peb_from_dataset(ds: &Dataset, dims: usize) -> Result<Vec<f64>, ChannelError> {
    let pos = ds.truth.positions.as_ref().ok_or_else(|| {
        ChannelError::Dataset("no positions.npy (ground truth needed for a bound)".into())
    })?;
    let dl = ds
        .truth
        .paths_delay_s
        .as_ref()
        .ok_or_else(|| ChannelError::Dataset("no paths_delay_s.npy".into()))?;
    let gn = ds
        .truth
        .paths_gain
        .as_ref()
        .ok_or_else(|| ChannelError::Dataset("no paths_gain.npy".into()))?;
    let rx = ds
        .meta
        .receiver_positions()
        .ok_or_else(|| ChannelError::Dataset("meta.json lacks receiver positions".into()))?;
    let offsets = &ds.meta.subcarrier_offsets_hz;
    let (n, n_rx, n_p) = dl.dim();
    if pos.nrows() != n || gn.dim() != dl.dim() || rx.len() != n_rx {
        return Err(ChannelError::Dataset(
            "truth arrays disagree in shape".into(),
        ));
    }
    let noise = ds.meta.noise.as_ref();
    let get = |key: &str| noise.and_then(|v| v.get(key)).and_then(|v| v.as_f64());
    let noise_var = match get("noise_variance") {
        Some(v) => v,
        None => {
            let snr_db = get("snr_db_per_subcarrier")
                .or_else(|| get("snr_db_per_subcarrier_median"))
                .ok_or_else(|| {
                    ChannelError::Dataset(
                        "meta.json noise gives neither noise_variance nor an SNR".into(),
                    )
                })?;
            let plan = crate::ofdm::TonePlan::new(ds.meta.carrier_hz, offsets.clone())?;
            let mut synth = Synthesizer::new(plan);
            let mut h = vec![Complex64::new(0.0, 0.0); offsets.len()];
            let mut powers = Vec::with_capacity(n * n_rx);
            for f in 0..n {
                for r in 0..n_rx {
                    let mut d = Vec::new();
                    let mut g = Vec::new();
                    for p in 0..n_p {
                        let t = dl[[f, r, p]];
                        if t.is_finite() {
                            d.push(t);
                            let x = gn[[f, r, p]];
                            g.push(Complex64::new(x.re as f64, x.im as f64));
                        }
                    }
                    h.iter_mut().for_each(|x| *x = Complex64::new(0.0, 0.0));
                    synth.add_paths(&d, &g, &mut h);
                    powers.push(h.iter().map(|x| x.norm_sqr()).sum::<f64>() / h.len() as f64);
                }
            }
            powers.sort_by(f64::total_cmp);
            powers[powers.len() / 2] / 10f64.powf(snr_db / 10.0)
        }
    };
    let mut out = Vec::with_capacity(n);
    for f in 0..n {
        let x = [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]];
        let mut anchors = Vec::new();
        for (r, &rp) in rx.iter().enumerate() {
            let los = distance(x, rp) / SPEED_OF_LIGHT;
            for p in 0..n_p {
                let t = dl[[f, r, p]];
                if t.is_finite() && (t - los).abs() * SPEED_OF_LIGHT < 1e-3 {
                    let g = gn[[f, r, p]];
                    let snr = (g.re as f64).powi(2) + (g.im as f64).powi(2);
                    let snr = if noise_var > 0.0 {
                        snr / noise_var
                    } else {
                        f64::INFINITY
                    };
                    anchors.push(RangeAnchor {
                        position: rp,
                        sigma_m: (SPEED_OF_LIGHT * delay_crlb_s(offsets, snr)).max(1e-12),
                    });
                    break;
                }
            }
        }
        out.push(peb(x, &anchors, dims));
    }
    Ok(out)
}

/// PEB per frame of a scenario simulated with `seed` (same positions and noise floor as
/// [`simulate`]), with the frames' dataset for reuse.
pub fn peb_per_frame(
    scenario: &Scenario,
    seed: u64,
    frames: Option<usize>,
    opts: PebOptions,
) -> Result<(Dataset, Vec<f64>), ChannelError> {
    let ds = simulate(scenario, seed, frames)?;
    let noise_var = ds
        .meta
        .noise
        .as_ref()
        .and_then(|v| v.get("noise_variance"))
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0);
    let model = ChannelModel::new(scenario);
    let pos = ds
        .truth
        .positions
        .as_ref()
        .ok_or_else(|| ChannelError::Dataset("simulation produced no positions".into()))?;
    let out = (0..pos.nrows())
        .map(|f| {
            peb_at(
                &model,
                [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]],
                noise_var,
                opts,
            )
        })
        .collect();
    Ok((ds, out))
}
