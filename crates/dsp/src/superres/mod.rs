//! Super-resolution of one link: from the CSI of one receiver antenna to a set of paths
//! `(τ_p, α_p, σ_τp)` under the model
//!
//! ```text
//! H[k] = Σ_p α_p e^{−j2π f_k τ_p} + n[k]      (f_k: tone offset from the carrier, Hz; τ_p: s)
//! ```
//!
//! Pipeline ([`PathEstimator::estimate`]):
//! 1. normalise power and common phase ([`crate::sanitize::normalize`]); place the tones on their
//!    uniform grid, interpolating missing (DC/guard/pilot) tones ([`crate::sanitize::to_uniform`]);
//! 2. strided, forward–backward smoothed covariance and its eigen-decomposition ([`esprit`]);
//! 3. model order from the eigenvalues ([`order`]);
//! 4. delays by ESPRIT (default) or MUSIC ([`music`]);
//! 5. gains by least squares on the *measured* tones, Levenberg–Marquardt refinement of delays and
//!    gains (maximum likelihood), pruning of paths weaker than `min_rel_power_db`;
//! 6. per-path standard deviation from the Cramér–Rao bound at the estimate with the residual
//!    noise variance ([`nls`]).
//!
//! Several vectors that share their delays are estimated jointly (their smoothed covariances
//! averaged, gains per vector): the antennas of an array ([`PathEstimator::estimate_array`],
//! which adds angles) and consecutive frames of a slowly moving tag
//! ([`PathEstimator::estimate_snapshots`], which splits coherent clusters one frame cannot).
//!
//! Delays include whatever timing offset the receiver adds (`δ_r` of design.md §1); see
//! [`crate::sanitize`] for offsets and calibration.

pub mod angle;
pub mod esprit;
pub mod music;
pub mod nls;
pub mod order;

use ndarray::ArrayView1;
use num_complex::{Complex32, Complex64};

use crate::error::DspError;
use crate::linalg::HermitianEigen;
use crate::sanitize::{normalize, to_uniform, UniformGrid};
use crate::PathEstimate;
pub use order::OrderRule;

/// Which subspace method proposes the delays (both are refined by NLS afterwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// LS-ESPRIT on the strided sub-array (fast; default).
    Esprit,
    /// MUSIC pseudo-spectrum search (slower; a cross-check).
    Music,
}

/// Options of the per-link estimator. `Default` (L = 24, D = 5: aperture 115 of 245 tones,
/// unambiguous range 640 ns at 312.5 kHz) is tuned for 802.11ac/ax 80 MHz (242 tones) at
/// ≥ 5,000 links/s per core.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimatorOptions {
    pub method: Method,
    /// Sub-array length `L` (size of the covariance, the dominant cost).
    pub subarray_len: usize,
    /// Sub-array stride `D` in tones: aperture `(L−1)·D·Δf`, unambiguous range `1/(DΔf)`.
    /// Shrunk automatically when the grid is too short.
    pub stride: usize,
    /// Upper bound on the number of paths.
    pub max_paths: usize,
    /// Model-order rule.
    pub order: OrderRule,
    /// Forward–backward averaging of the covariance.
    pub forward_backward: bool,
    /// Levenberg–Marquardt iterations of the NLS (maximum-likelihood) refinement; 0 = ESPRIT
    /// delays + LS gains. Default 0: ESPRIT alone is already within 1.15× the CRLB on isolated
    /// paths, and on ray-traced links (LoS with reflections 0.2–2 ns later, unresolvable at
    /// 80 MHz) the ML fit of a too-small model moves the first path *more* than ESPRIT's smoothed
    /// estimate (walks-sync LoS median error 0.63 ns with 6 iterations vs 0.49 ns without; see
    /// reports/dsp.md). Use 4–6 for clean, well-separated specular channels.
    pub refine_iterations: usize,
    /// Paths weaker than this (dB, relative to the strongest path's |α|²) are dropped.
    pub min_rel_power_db: f64,
    /// Two paths closer than this (s) are merged (the weaker is dropped).
    pub merge_s: f64,
    /// Start of the delay window (s); delays are reported in `[min_delay_s, min_delay_s + 1/(DΔf))`.
    pub min_delay_s: f64,
}

impl Default for EstimatorOptions {
    fn default() -> Self {
        Self {
            method: Method::Esprit,
            subarray_len: 24,
            stride: 5,
            max_paths: 8,
            order: OrderRule::Mdl,
            forward_backward: true,
            refine_iterations: 0,
            min_rel_power_db: -30.0,
            merge_s: 0.5e-9,
            min_delay_s: -100e-9,
        }
    }
}

/// Everything estimated for one link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkEstimate {
    /// Paths sorted by delay.
    pub paths: Vec<PathEstimate>,
    /// Residual noise variance per tone (input units²).
    pub noise_var: f64,
    /// Mean signal power per tone over noise (dB), from the fitted model.
    pub snr_db: f64,
    /// Model order chosen from the eigenvalues (before pruning).
    pub order: usize,
}

/// A per-link estimator for one tone layout. Reuse it across links: it holds the grid, the
/// eigen-solver workspace and all buffers, so the hot loop does not allocate much.
pub struct PathEstimator {
    opts: EstimatorOptions,
    grid: UniformGrid,
    tones: nls::Tones,
    l: usize,
    d: usize,
    eig: HermitianEigen,
    h: Vec<Complex64>,
    x: Vec<Complex64>,
    cov: Vec<Complex64>,
    vals: Vec<f64>,
    vecs: Vec<Complex64>,
    work: nls::Work,
}

impl PathEstimator {
    /// Builds the estimator for tones at `offsets_hz` (Hz from the carrier, the order of the CSI).
    pub fn new(offsets_hz: &[f64], opts: EstimatorOptions) -> Result<Self, DspError> {
        if opts.subarray_len < 2 {
            return Err(DspError::InvalidOption {
                name: "subarray_len",
                why: "must be ≥ 2".into(),
            });
        }
        if opts.stride == 0 {
            return Err(DspError::InvalidOption {
                name: "stride",
                why: "must be ≥ 1".into(),
            });
        }
        let grid = UniformGrid::new(offsets_hz)?;
        let n = grid.n;
        if offsets_hz.len() < 8 {
            return Err(DspError::TooFewTones {
                what: "super-resolution",
                need: 8,
                got: offsets_hz.len(),
            });
        }
        let need_snap = (opts.max_paths + 1).max(4);
        let mut l = opts.subarray_len;
        let mut d = opts.stride;
        while d > 1 && (l - 1) * d + need_snap > n {
            d -= 1;
        }
        if (l - 1) * d + need_snap > n {
            l = (n + 1).saturating_sub(need_snap).max(2) / 2 + 1;
        }
        if l < 2 || (l - 1) * d + 1 > n {
            return Err(DspError::TooFewTones {
                what: "super-resolution",
                need: need_snap + 2,
                got: offsets_hz.len(),
            });
        }
        let tones = nls::Tones::new(offsets_hz, &grid);
        Ok(Self {
            eig: HermitianEigen::new(l),
            opts,
            grid,
            tones,
            l,
            d,
            h: Vec::new(),
            x: Vec::new(),
            cov: Vec::new(),
            vals: Vec::new(),
            vecs: Vec::new(),
            work: nls::Work::default(),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &EstimatorOptions {
        &self.opts
    }

    /// The effective sub-array length and stride (after shrinking to the grid).
    pub fn subarray(&self) -> (usize, usize) {
        (self.l, self.d)
    }

    /// The uniform grid of the tones.
    pub fn grid(&self) -> &UniformGrid {
        &self.grid
    }

    /// Paths of one link given as single-precision CSI (the dataset's `complex64`).
    pub fn estimate_c32(
        &mut self,
        csi: ArrayView1<Complex32>,
    ) -> Result<Vec<PathEstimate>, DspError> {
        let v: Vec<Complex64> = csi
            .iter()
            .map(|c| Complex64::new(c.re as f64, c.im as f64))
            .collect();
        Ok(self.estimate_detailed(&v)?.paths)
    }

    /// Paths of one link, sorted by delay.
    pub fn estimate(&mut self, csi: &[Complex64]) -> Result<Vec<PathEstimate>, DspError> {
        Ok(self.estimate_detailed(csi)?.paths)
    }

    /// Paths plus noise variance, SNR and the chosen model order.
    pub fn estimate_detailed(&mut self, csi: &[Complex64]) -> Result<LinkEstimate, DspError> {
        let k = self.tones.len();
        if csi.len() != k {
            return Err(DspError::LengthMismatch {
                csi: csi.len(),
                offsets: k,
            });
        }
        self.h.clear();
        self.h.extend_from_slice(csi);
        let factor = normalize(&mut self.h)?;

        // 1. uniform grid
        uniform(&self.h, &self.grid, &mut self.x)?;

        // 2. covariance; 3.–4. order and delays from its eigen-decomposition
        let (l, d) = (self.l, self.d);
        esprit::smoothed_covariance(&self.x, l, d, self.opts.forward_backward, &mut self.cov);
        let (p, taus) = self.subspace_delays(1)?;

        // 5. gains, refinement, pruning
        let mut theta: Vec<f64> = taus.iter().map(|&t| self.tones.theta_of(t)).collect();
        let (mut alpha, mut cost) = self.fit_gains(&theta)?;
        for _round in 0..3 {
            if self.opts.refine_iterations > 0 {
                cost = nls::refine(
                    &self.tones,
                    &self.h,
                    &mut theta,
                    &mut alpha,
                    self.opts.refine_iterations,
                    &mut self.work,
                );
            }
            if !self.prune(&mut theta, &mut alpha) {
                break;
            }
            let (a, c) = self.fit_gains(&theta)?;
            alpha = a;
            cost = c;
        }

        // 6. uncertainty
        let np = theta.len();
        let dof = k.saturating_sub(3 * np).max(1) as f64;
        let sigma2 = (cost / dof).max(1e-30);
        self.tones
            .vandermonde(&theta, &mut self.work.v, &mut self.work.pw);
        let std = nls::crlb_std(&self.tones, &self.work.v, &alpha, sigma2);
        let signal = (k as f64 - cost).max(0.0) / k as f64;
        let inv = 1.0 / factor;
        let mut paths: Vec<PathEstimate> = theta
            .iter()
            .zip(&alpha)
            .zip(&std)
            .map(|((t, a), s)| PathEstimate {
                delay_s: self.tones.tau_of(*t),
                gain: a * inv,
                std_s: *s,
            })
            .filter(|p| p.delay_s.is_finite() && p.gain.re.is_finite() && p.gain.im.is_finite())
            .collect();
        paths.sort_by(|a, b| a.delay_s.total_cmp(&b.delay_s));
        Ok(LinkEstimate {
            paths,
            noise_var: sigma2 * inv.norm_sqr(),
            snr_db: 10.0 * (signal.max(1e-30) / sigma2).log10(),
            order: p,
        })
    }

    /// Eigen-decomposition of `self.cov`, the model order and the delays (s) of its signal
    /// subspace. `looks` smoothed covariances were averaged into `self.cov` (antennas), which
    /// multiplies the snapshots the order rule sees.
    fn subspace_delays(&mut self, looks: usize) -> Result<(usize, Vec<f64>), DspError> {
        let (l, d, k) = (self.l, self.d, self.tones.len());
        self.eig
            .compute(&self.cov, &mut self.vals, &mut self.vecs)?;
        let snapshots = self.grid.n - (l - 1) * d;
        let max_order = self
            .opts
            .max_paths
            .min(l - 1)
            .min(snapshots.saturating_sub(1))
            .min(k / 3);
        let p =
            order::select_order(&self.vals, snapshots * looks, self.opts.order, max_order).max(1);
        let us = &self.vecs[..p * l];
        let tmin = self.opts.min_delay_s;
        let mut taus: Vec<f64> = match self.opts.method {
            Method::Esprit => esprit::esprit_poles(us, l, p)?
                .into_iter()
                .map(|z| esprit::pole_to_delay(z, d, self.grid.df_hz, tmin))
                .collect(),
            Method::Music => music::music_delays(us, l, p, d, self.grid.df_hz, tmin),
        };
        taus.retain(|t| t.is_finite());
        if taus.is_empty() {
            return Err(DspError::LinearAlgebra {
                what: "no finite delay",
            });
        }
        Ok((p, taus))
    }

    fn fit_gains(&mut self, theta: &[f64]) -> Result<(Vec<Complex64>, f64), DspError> {
        self.tones
            .vandermonde(theta, &mut self.work.v, &mut self.work.pw);
        let a =
            nls::ls_gains(&self.work.v, &self.h, theta.len()).ok_or(DspError::LinearAlgebra {
                what: "gain least squares",
            })?;
        let c = nls::residual(&self.work.v, &self.h, &a, &mut self.work.r);
        Ok((a, c))
    }

    /// Drops weak and merged paths; true when something was removed.
    fn prune(&self, theta: &mut Vec<f64>, alpha: &mut Vec<Complex64>) -> bool {
        let n0 = theta.len();
        let pmax = alpha.iter().map(|a| a.norm_sqr()).fold(0.0, f64::max);
        let thr = pmax * 10f64.powf(self.opts.min_rel_power_db / 10.0);
        let merge = self.tones.theta_of(self.opts.merge_s);
        let mut idx: Vec<usize> = (0..n0).collect();
        // strongest first, so merging keeps the stronger path
        idx.sort_by(|&a, &b| alpha[b].norm_sqr().total_cmp(&alpha[a].norm_sqr()));
        let mut keep: Vec<usize> = Vec::with_capacity(n0);
        for i in idx {
            if alpha[i].norm_sqr().is_nan() || alpha[i].norm_sqr() < thr || !theta[i].is_finite() {
                continue;
            }
            if keep.iter().any(|&j| (theta[j] - theta[i]).abs() < merge) {
                continue;
            }
            keep.push(i);
        }
        if keep.len() == n0 || keep.is_empty() {
            return false;
        }
        keep.sort_unstable();
        *theta = keep.iter().map(|&i| theta[i]).collect();
        *alpha = keep.iter().map(|&i| alpha[i]).collect();
        true
    }
}

/// Places one link's normalised tones on the uniform grid: missing tones are interpolated after
/// de-rotating by the mean phase slope (so that the interpolation follows the dominant delay).
fn uniform(h: &[Complex64], grid: &UniformGrid, out: &mut Vec<Complex64>) -> Result<(), DspError> {
    let derot = if grid.n_missing() > 0 {
        let mut pos = vec![usize::MAX; grid.n];
        for (i, &g) in grid.index.iter().enumerate() {
            pos[g] = i;
        }
        let mut acc = Complex64::new(0.0, 0.0);
        for g in 0..grid.n - 1 {
            if pos[g] != usize::MAX && pos[g + 1] != usize::MAX {
                acc += h[pos[g + 1]] * h[pos[g]].conj();
            }
        }
        -acc.arg() / (2.0 * std::f64::consts::PI * grid.df_hz)
    } else {
        0.0
    };
    to_uniform(h, grid, derot, out)
}

/// One path seen on every antenna of a receiver (joint delay–angle estimate).
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayPath {
    /// Delay (s), common to the antennas (the array is small against `c/B`).
    pub delay_s: f64,
    /// Standard deviation of the delay (s): the per-antenna CRLBs combined (independent noise).
    pub std_s: f64,
    /// Complex gain on each antenna, in the input's units.
    pub gains: Vec<Complex64>,
    /// `cos ψ`, ψ the angle between the array axis and the arrival direction (NaN with one
    /// antenna); see [`angle`].
    pub cos_axis: f64,
    /// Standard deviation of `cos_axis` (CRLB of the matched filter, overlap ignored).
    pub cos_axis_std: f64,
}

impl ArrayPath {
    /// The angle ψ between the array axis and the arrival direction (rad).
    pub fn angle_from_axis_rad(&self) -> f64 {
        self.cos_axis.clamp(-1.0, 1.0).acos()
    }
}

/// Everything estimated for one receiver's antennas jointly.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayLinkEstimate {
    /// Paths sorted by delay.
    pub paths: Vec<ArrayPath>,
    /// Residual noise variance per tone and antenna (input units²).
    pub noise_var: f64,
    /// Mean signal power per tone over noise (dB).
    pub snr_db: f64,
    /// Model order chosen from the eigenvalues.
    pub order: usize,
}

impl PathEstimator {
    /// Joint delay–angle estimation over the antennas of one linear array (`csi[a]`: antenna
    /// `a`'s tones; `axis_m[a]`: its position along the array axis, see [`angle::linear_axis`]).
    ///
    /// The delays are common to all antennas, so the smoothed covariances of the antennas are
    /// averaged before ESPRIT (more snapshots, the same signal subspace); each antenna's gains
    /// are then fitted by least squares at those delays, and each path's angle comes from the
    /// phase progression of its gains across the array ([`angle::direction_cosine`]). One common
    /// factor normalises all antennas, so their relative phases survive.
    pub fn estimate_array(
        &mut self,
        csi: &[&[Complex64]],
        axis_m: &[f64],
        carrier_hz: f64,
    ) -> Result<ArrayLinkEstimate, DspError> {
        if csi.is_empty() || axis_m.len() != csi.len() {
            return Err(DspError::InvalidOption {
                name: "antennas",
                why: format!(
                    "{} CSI vectors for {} antenna positions",
                    csi.len(),
                    axis_m.len()
                ),
            });
        }
        let j = self.joint_fit(csi)?;
        let (k, n_ant, np) = (self.tones.len(), csi.len(), j.theta.len());
        let gain_var = j.sigma2 / k as f64;
        let inv = 1.0 / j.factor;
        let mut paths: Vec<ArrayPath> = (0..np)
            .map(|q| {
                let alpha: Vec<Complex64> = j.gains.iter().map(|g| g[q]).collect();
                let (c, cs) = angle::direction_cosine(&alpha, axis_m, carrier_hz, gain_var);
                ArrayPath {
                    delay_s: self.tones.tau_of(j.theta[q]),
                    std_s: j.std[q],
                    gains: alpha.iter().map(|a| a * inv).collect(),
                    cos_axis: c,
                    cos_axis_std: cs,
                }
            })
            .filter(|p| {
                p.delay_s.is_finite()
                    && p.gains.iter().all(|g| g.re.is_finite() && g.im.is_finite())
            })
            .collect();
        paths.sort_by(|a, b| a.delay_s.total_cmp(&b.delay_s));
        let (noise_var, snr_db) = j.noise(k, n_ant);
        Ok(ArrayLinkEstimate {
            paths,
            noise_var,
            snr_db,
            order: j.order,
        })
    }

    /// One link's paths from several *snapshots* of it: the same receiver antenna in consecutive
    /// frames of a slowly moving tag (`csi[s]`: snapshot `s`'s tones; `reference`: the frame the
    /// result describes).
    ///
    /// Why: at 80 MHz the direct path and its floor, ceiling and near-wall images arrive within
    /// `c/B` of each other and are coherent within one frame, so one frame's covariance cannot
    /// split them. A few centimetres of motion change their relative carrier phases (5.8 cm is a
    /// full turn at 5.2 GHz) while their delays move by millimetres to centimetres, so averaging
    /// the snapshots' smoothed covariances decorrelates the cluster, as antennas do in
    /// [`Self::estimate_array`]. The delays are common to the snapshots (the motion over the
    /// window is the caller's to keep small); gains are fitted per snapshot. Each path's gain is
    /// the reference snapshot's phase with the RMS magnitude over the snapshots (the power a
    /// first-path rule compares is then an average, not one frame's fade). With one snapshot
    /// this is [`Self::estimate_detailed`] without its NLS refinement.
    pub fn estimate_snapshots(
        &mut self,
        csi: &[&[Complex64]],
        reference: usize,
    ) -> Result<LinkEstimate, DspError> {
        if reference >= csi.len() {
            return Err(DspError::InvalidOption {
                name: "reference",
                why: format!("snapshot {reference} of {}", csi.len()),
            });
        }
        let j = self.joint_fit(csi)?;
        let (k, n_s) = (self.tones.len(), csi.len());
        let inv = 1.0 / j.factor;
        let mut paths: Vec<PathEstimate> = (0..j.theta.len())
            .map(|q| {
                let rms =
                    (j.gains.iter().map(|g| g[q].norm_sqr()).sum::<f64>() / n_s as f64).sqrt();
                let g = j.gains[reference][q];
                let unit = if g.norm() > 0.0 {
                    g / g.norm()
                } else {
                    Complex64::new(1.0, 0.0)
                };
                PathEstimate {
                    delay_s: self.tones.tau_of(j.theta[q]),
                    gain: unit * rms * inv,
                    std_s: j.std[q],
                }
            })
            .filter(|p| p.delay_s.is_finite() && p.gain.re.is_finite() && p.gain.im.is_finite())
            .collect();
        paths.sort_by(|a, b| a.delay_s.total_cmp(&b.delay_s));
        let (noise_var, snr_db) = j.noise(k, n_s);
        Ok(LinkEstimate {
            paths,
            noise_var,
            snr_db,
            order: j.order,
        })
    }

    /// The joint core of [`Self::estimate_array`] and [`Self::estimate_snapshots`]: common
    /// delays from the averaged smoothed covariances, least-squares gains per input vector,
    /// pruning on the power averaged over the vectors, and each delay's CRLB combined over them.
    fn joint_fit(&mut self, csi: &[&[Complex64]]) -> Result<JointFit, DspError> {
        let k = self.tones.len();
        let n_ant = csi.len();
        if n_ant == 0 {
            return Err(DspError::InvalidOption {
                name: "antennas",
                why: "no CSI vectors".into(),
            });
        }
        for h in csi {
            if h.len() != k {
                return Err(DspError::LengthMismatch {
                    csi: h.len(),
                    offsets: k,
                });
            }
            if let Some(i) = h
                .iter()
                .position(|v| !v.re.is_finite() || !v.im.is_finite())
            {
                return Err(DspError::NonFinite { index: i });
            }
        }
        // one factor for all vectors: total power, vector 0's common phase
        let p: f64 = csi
            .iter()
            .flat_map(|h| h.iter())
            .map(|v| v.norm_sqr())
            .sum::<f64>()
            / (n_ant * k) as f64;
        if p <= 0.0 {
            return Err(DspError::ZeroEnergy);
        }
        let s0: Complex64 = csi[0].iter().sum();
        let phase = if s0.norm() > 0.0 {
            s0.conj() / s0.norm()
        } else {
            Complex64::new(1.0, 0.0)
        };
        let factor = phase / p.sqrt();
        let hs: Vec<Vec<Complex64>> = csi
            .iter()
            .map(|h| h.iter().map(|v| v * factor).collect())
            .collect();

        // covariance averaged over the vectors
        let (l, d) = (self.l, self.d);
        let mut acc = vec![Complex64::new(0.0, 0.0); l * l];
        for h in &hs {
            uniform(h, &self.grid, &mut self.x)?;
            esprit::smoothed_covariance(&self.x, l, d, self.opts.forward_backward, &mut self.cov);
            for (a, c) in acc.iter_mut().zip(&self.cov) {
                *a += c / n_ant as f64;
            }
        }
        self.cov = acc;
        let (order, taus) = self.subspace_delays(n_ant)?;

        // gains per vector; pruning on the power averaged over the vectors
        let mut theta: Vec<f64> = taus.iter().map(|&t| self.tones.theta_of(t)).collect();
        let fit =
            |theta: &[f64], this: &mut Self| -> Result<(Vec<Vec<Complex64>>, f64), DspError> {
                let mut gains = Vec::with_capacity(n_ant);
                let mut cost = 0.0;
                for h in &hs {
                    this.h.clear();
                    this.h.extend_from_slice(h);
                    let (a, c) = this.fit_gains(theta)?;
                    gains.push(a);
                    cost += c;
                }
                Ok((gains, cost))
            };
        let (mut gains, mut cost) = fit(&theta, self)?;
        for _round in 0..3 {
            let mut rms: Vec<Complex64> = (0..theta.len())
                .map(|q| {
                    let pw = gains.iter().map(|g| g[q].norm_sqr()).sum::<f64>() / n_ant as f64;
                    Complex64::new(pw.sqrt(), 0.0)
                })
                .collect();
            if !self.prune(&mut theta, &mut rms) {
                break;
            }
            (gains, cost) = fit(&theta, self)?;
        }

        // uncertainty: each vector's CRLB, combined as independent looks
        let np = theta.len();
        let dof = (n_ant * k).saturating_sub(n_ant * 2 * np + np).max(1) as f64;
        let sigma2 = (cost / dof).max(1e-30);
        self.tones
            .vandermonde(&theta, &mut self.work.v, &mut self.work.pw);
        let mut info = vec![0.0; np];
        for g in &gains {
            for (i, s) in nls::crlb_std(&self.tones, &self.work.v, g, sigma2)
                .iter()
                .enumerate()
            {
                info[i] += 1.0 / (s * s).max(1e-300);
            }
        }
        Ok(JointFit {
            theta,
            gains,
            cost,
            sigma2,
            std: info.iter().map(|v| 1.0 / v.sqrt()).collect(),
            order,
            factor,
        })
    }
}

/// What [`PathEstimator::joint_fit`] found, in normalised units (`factor` undoes them).
struct JointFit {
    theta: Vec<f64>,
    /// `gains[v][q]`: path q on input vector v.
    gains: Vec<Vec<Complex64>>,
    cost: f64,
    sigma2: f64,
    /// Delay standard deviation per path (s).
    std: Vec<f64>,
    order: usize,
    factor: Complex64,
}

impl JointFit {
    /// `(noise variance per tone and vector in the input's units, mean signal over noise in
    /// dB)` for `k` tones and `n` vectors.
    fn noise(&self, k: usize, n: usize) -> (f64, f64) {
        let signal = (k as f64 - self.cost / n as f64).max(0.0) / k as f64;
        (
            self.sigma2 / self.factor.norm_sqr(),
            10.0 * (signal.max(1e-30) / self.sigma2).log10(),
        )
    }
}

/// Paths of one link (convenience wrapper; build a [`PathEstimator`] once when estimating many
/// links with the same tones).
pub fn estimate_paths(
    csi: ArrayView1<Complex32>,
    offsets_hz: &[f64],
    opts: &EstimatorOptions,
) -> Result<Vec<PathEstimate>, DspError> {
    PathEstimator::new(offsets_hz, opts.clone())?.estimate_c32(csi)
}
