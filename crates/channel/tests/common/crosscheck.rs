//! Cross-check of rfloc's image-source model against the independent ray tracer (Sionna RT) of
//! `../shared/datasets/factory-a-grid-sync`: shared by `tests/crosscheck.rs` (asserts) and
//! `examples/crosscheck.rs` (writes `reports/channel-crosscheck.md`).

use std::path::Path;

use ndarray::Array3;
use rfloc_channel::{ChannelModel, Scenario};
use rfloc_csi::dataset::Dataset;

/// Path kinds of the shared data set's `paths_kind.npy`.
const LOS: u8 = 0;
const PADDING: u8 = 254;
const DIFFRACTION: u8 = 255;

#[derive(Debug, Clone)]
pub struct CrossCheck {
    pub frames: usize,
    pub links: usize,
    pub los_truth: usize,
    pub los_ours: usize,
    pub los_agree: usize,
    /// Links LoS in the truth but blocked in rfloc, and the reverse.
    pub los_missed: usize,
    pub los_extra: usize,
    pub los_delay_err_max_s: f64,
    pub los_delay_err_median_s: f64,
    /// Ray-traced specular paths of order 1 and 2 (among the 24 stored per link) and how many rfloc
    /// finds within the tolerance.
    pub spec_truth: [usize; 2],
    pub spec_found: [usize; 2],
    /// rfloc's paths of order ≤ 2 earlier than the link's last stored ray-traced path, and how many
    /// of them match a stored ray-traced path (any kind) within the tolerance.
    pub ours_early: usize,
    pub ours_matched: usize,
    pub diffraction_paths: usize,
    pub third_order_paths: usize,
    pub grid_points_scenario: usize,
    pub grid_points_truth: usize,
    pub grid_points_same: usize,
    pub tolerance_s: f64,
    /// Median of `20 log10(|g_ray| / |g_rfloc|)` on LoS links (dB; 0 = same free-space loss).
    pub los_gain_ratio_db: f64,
    /// Per surface: count of matched first-order reflections and the medians of
    /// `20 log10(|g| / (λ/4πd))` (effective reflection gain, dB) of the ray tracer and of rfloc.
    pub reflection_loss_db: Vec<(String, usize, f64, f64)>,
    /// Matched specular paths of order 1–2: median and 90th percentile of `|g_ray − g_rfloc| / |g_ray|`.
    pub gain_rel_err_median: f64,
    pub gain_rel_err_p90: f64,
}

pub fn shared_grid_dir() -> Option<std::path::PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/factory-a-grid-sync");
    p.join("meta.json").exists().then_some(p)
}

pub fn run(dir: &Path) -> Result<CrossCheck, String> {
    let text = rfloc_channel::bundled("factory-a").ok_or("no bundled factory-a")?;
    let scenario = Scenario::from_toml_str(text).map_err(|e| e.to_string())?;
    let ds = Dataset::read(dir).map_err(|e| e.to_string())?;
    let kind: Array3<u8> =
        ndarray_npy::read_npy(dir.join("paths_kind.npy")).map_err(|e| e.to_string())?;
    let pos = ds.truth.positions.as_ref().ok_or("no positions")?;
    let delay = ds.truth.paths_delay_s.as_ref().ok_or("no path delays")?;
    let (n, n_rx, n_p) = delay.dim();
    if kind.dim() != delay.dim() {
        return Err("paths_kind and paths_delay_s differ in shape".into());
    }
    // the scenario's receivers must be the data set's
    let rx_truth = ds
        .meta
        .receiver_positions()
        .ok_or("no receiver positions")?;
    for (r, p) in rx_truth.iter().enumerate() {
        let q = scenario.scene.receivers[r].position;
        if (0..3).any(|i| (p[i] - q[i]).abs() > 1e-9) {
            return Err(format!("receiver {r} differs: {p:?} vs {q:?}"));
        }
    }
    let gain = ds.truth.paths_gain.as_ref().ok_or("no path gains")?;
    let lambda = rfloc_channel::SPEED_OF_LIGHT / ds.meta.carrier_hz;
    let model = ChannelModel::new(&scenario);
    let tol = 0.1e-9;
    let mut los_ratio = Vec::new();
    let mut refl: std::collections::BTreeMap<String, (Vec<f64>, Vec<f64>)> = Default::default();
    let mut c = CrossCheck {
        frames: n,
        links: n * n_rx,
        los_truth: 0,
        los_ours: 0,
        los_agree: 0,
        los_missed: 0,
        los_extra: 0,
        los_delay_err_max_s: 0.0,
        los_delay_err_median_s: 0.0,
        spec_truth: [0; 2],
        spec_found: [0; 2],
        ours_early: 0,
        ours_matched: 0,
        diffraction_paths: 0,
        third_order_paths: 0,
        grid_points_scenario: 0,
        grid_points_truth: n,
        grid_points_same: 0,
        tolerance_s: tol,
        los_gain_ratio_db: 0.0,
        reflection_loss_db: Vec::new(),
        gain_rel_err_median: f64::NAN,
        gain_rel_err_p90: f64::NAN,
    };
    let mut gain_err = Vec::new();
    let mut los_err = Vec::new();
    for f in 0..n {
        let tx = [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]];
        for r in 0..n_rx {
            let ours = model.paths(r, 0, tx);
            let truth_los = (0..n_p).find(|&p| kind[[f, r, p]] == LOS);
            let our_los = ours.iter().find(|p| p.los);
            c.los_truth += truth_los.is_some() as usize;
            c.los_ours += our_los.is_some() as usize;
            match (truth_los, our_los) {
                (Some(p), Some(q)) => {
                    c.los_agree += 1;
                    los_err.push((delay[[f, r, p]] - q.delay_s).abs());
                    los_ratio.push(20.0 * (gain[[f, r, p]].norm() as f64 / q.gain.norm()).log10());
                }
                (None, None) => c.los_agree += 1,
                (Some(_), None) => c.los_missed += 1,
                (None, Some(_)) => c.los_extra += 1,
            }
            let mut last = f64::NEG_INFINITY;
            for p in 0..n_p {
                let k = kind[[f, r, p]];
                let t = delay[[f, r, p]];
                if k == PADDING || !t.is_finite() {
                    continue;
                }
                last = last.max(t);
                match k {
                    1 | 2 => {
                        let i = k as usize - 1;
                        c.spec_truth[i] += 1;
                        if let Some(q) = ours.iter().find(|q| (q.delay_s - t).abs() < tol) {
                            c.spec_found[i] += 1;
                            let gr = gain[[f, r, p]];
                            let gr = num_complex::Complex64::new(gr.re as f64, gr.im as f64);
                            if gr.norm() > 0.0 {
                                gain_err.push((gr - q.gain).norm() / gr.norm());
                            }
                            if k == 1 && q.order == 1 {
                                let face = &scenario.scene.faces[q.faces[0]];
                                let material = match face.owner {
                                    rfloc_channel::geometry::FaceOwner::Hall => {
                                        format!("hall ({})", face.name)
                                    }
                                    rfloc_channel::geometry::FaceOwner::Obstacle(o) => {
                                        scenario.scene.obstacles[o].material.name.clone()
                                    }
                                };
                                let material = if material.starts_with("hall (wall") {
                                    "hall walls".to_string()
                                } else {
                                    material
                                };
                                let fs = lambda
                                    / (4.0
                                        * std::f64::consts::PI
                                        * t
                                        * rfloc_channel::SPEED_OF_LIGHT);
                                let e = refl.entry(material).or_default();
                                e.0.push(20.0 * (gain[[f, r, p]].norm() as f64 / fs).log10());
                                e.1.push(20.0 * (q.gain.norm() / fs).log10());
                            }
                        }
                    }
                    3 => c.third_order_paths += 1,
                    DIFFRACTION => c.diffraction_paths += 1,
                    _ => {}
                }
            }
            for q in ours.iter().filter(|q| q.delay_s <= last) {
                c.ours_early += 1;
                if (0..n_p).any(|p| {
                    kind[[f, r, p]] != PADDING && (delay[[f, r, p]] - q.delay_s).abs() < tol
                }) {
                    c.ours_matched += 1;
                }
            }
        }
    }
    let median = |v: &mut Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    };
    c.los_gain_ratio_db = median(&mut los_ratio);
    for (m, (mut v, mut w)) in refl {
        let n = v.len();
        c.reflection_loss_db
            .push((m, n, median(&mut v), median(&mut w)));
    }
    gain_err.sort_by(f64::total_cmp);
    if !gain_err.is_empty() {
        c.gain_rel_err_median = gain_err[gain_err.len() / 2];
        c.gain_rel_err_p90 = gain_err[(gain_err.len() - 1) * 9 / 10];
    }
    los_err.sort_by(f64::total_cmp);
    if !los_err.is_empty() {
        c.los_delay_err_max_s = los_err[los_err.len() - 1];
        c.los_delay_err_median_s = los_err[los_err.len() / 2];
    }
    // does the estimated layout reproduce the data set's grid (0.5 m, 0.25 m clearance)?
    let grid = rfloc_channel::motion::GridMotion {
        rate_hz: 10.0,
        spacing_m: 0.5,
        margin_m: 0.5,
        clearance_m: 0.25,
        height_m: 1.2,
    };
    let pts = rfloc_channel::motion::grid_points(&grid, &scenario.scene);
    c.grid_points_scenario = pts.len();
    c.grid_points_same = (0..n)
        .filter(|&f| {
            pts.iter().any(|(p, _)| {
                (p[0] - pos[[f, 0]]).abs() < 1e-6 && (p[1] - pos[[f, 1]]).abs() < 1e-6
            })
        })
        .count();
    Ok(c)
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

impl CrossCheck {
    pub fn los_agreement_pct(&self) -> f64 {
        pct(self.los_agree, self.links)
    }
    pub fn specular_found_pct(&self) -> f64 {
        pct(
            self.spec_found[0] + self.spec_found[1],
            self.spec_truth[0] + self.spec_truth[1],
        )
    }

    pub fn markdown(&self, command: &str) -> String {
        format!(
            "# rfloc channel model vs. an independent ray tracer (factory-a grid)\n\n\
Regenerate: `{command}`\n\n\
Reference: `../shared/datasets/factory-a-grid-sync` (Sionna RT 2.2.0: LoS, specular reflections up to \
3 bounces, first-order edge diffraction), {frames} grid positions × 4 receivers = {links} links, the 24 \
earliest ray-traced paths per link with their kind. rfloc: `scenarios/factory-a.toml`, image sources up \
to order 2, no diffraction.\n\n\
**The obstacle layout of the hall is not published**: `scenarios/factory-a.toml` estimates it from the \
grid data set (footprints from the grid points left out around obstacles, face positions from the \
first-order ray-traced delays, heights from which links have line of sight; see the TOML's header). \
The hall, receivers and tag height are given. Agreement is therefore partly by construction for the \
obstacle faces; what this checks independently is rfloc's image-source machinery (mirror images, \
visibility, blocking, second-order combinations) over 3,396 links.\n\n\
| check | goal | measured |\n|---|---|---|\n\
| line-of-sight state agrees (LoS in both or blocked in both) | ≥ 98 % | {los:.2} % ({agree} of {links}; ray tracer LoS {lt}, rfloc LoS {lo}; LoS missed by rfloc {miss}, extra {extra}) |\n\
| first-path (LoS) delay error on links LoS in both | ≤ 1 ps | max {emax:.4} ps, median {emed:.4} ps |\n\
| ray-traced specular paths of order 1–2 found by rfloc within {tol} ns | ≥ 90 % | {spec:.2} % ({f1} of {t1} first order = {p1:.2} %, {f2} of {t2} second order = {p2:.2} %) |\n\
| rfloc paths (order ≤ 2, not later than the link's last stored ray-traced path) matching a stored ray-traced path within {tol} ns | — | {prec:.2} % ({om} of {oe}) |\n\
| grid points of the data set reproduced by the estimated footprints (0.5 m grid, 0.25 m clearance) | — | {gs} of {gt} data-set points; rfloc's grid has {gp} points |\n\n\
Not modelled by rfloc and so not compared: {dif} diffracted paths and {third} third-order reflections \
among the stored ray-traced paths.\n\n\
**Gains** (not a goal of the issue): on links LoS in both, the median amplitude ratio ray tracer / \
rfloc is {lgr:+.3} dB (free space λ/(4πd), isotropic antennas). Over the matched specular paths of \
order 1–2, the complex gain error |g_ray − g_rfloc| / |g_ray| has median {gem:.4} and 90th percentile \
{ge9:.4} (rfloc: `[materials]` of the TOML, polarimetric Fresnel reflection with vertical \
polarisation). Effective first-order reflection gain, median of 20·log10(|g| / (λ/4πd)) over the \
matched first-order paths, per surface:\n\n\
| surface | matched first-order paths | ray tracer, dB | rfloc, dB |\n|---|---|---|---|\n{refl}",
            command = command,
            frames = self.frames,
            links = self.links,
            los = self.los_agreement_pct(),
            agree = self.los_agree,
            lt = self.los_truth,
            lo = self.los_ours,
            miss = self.los_missed,
            extra = self.los_extra,
            emax = self.los_delay_err_max_s * 1e12,
            emed = self.los_delay_err_median_s * 1e12,
            tol = self.tolerance_s * 1e9,
            spec = self.specular_found_pct(),
            f1 = self.spec_found[0],
            t1 = self.spec_truth[0],
            p1 = pct(self.spec_found[0], self.spec_truth[0]),
            f2 = self.spec_found[1],
            t2 = self.spec_truth[1],
            p2 = pct(self.spec_found[1], self.spec_truth[1]),
            prec = pct(self.ours_matched, self.ours_early),
            om = self.ours_matched,
            oe = self.ours_early,
            gs = self.grid_points_same,
            gt = self.grid_points_truth,
            gp = self.grid_points_scenario,
            dif = self.diffraction_paths,
            third = self.third_order_paths,
            lgr = self.los_gain_ratio_db,
            gem = self.gain_rel_err_median,
            ge9 = self.gain_rel_err_p90,
            refl = self
                .reflection_loss_db
                .iter()
                .map(|(m, n, ray, ours)| format!("| {m} | {n} | {ray:.2} | {ours:.2} |\n"))
                .collect::<String>(),
        )
    }
}

/// How much of the ray tracer's measured CSI (noise, diffraction, third order and all) rfloc's
/// specular model explains, per link, after removing what the data set leaves unknown: each
/// receiver's fixed delay (searched 0–45 ns, common to all its links) and a complex scale per
/// link. `nmse_db` = 10 log10(‖H − c·Ĥ‖² / ‖H‖²) with the best `c`; also for the ray tracer's own
/// 24 stored paths as the reference model (what a perfect specular+diffraction model that
/// keeps 24 paths would reach under this noise).
#[allow(dead_code)]
pub struct CsiFit {
    pub receiver_delay_ns: Vec<f64>,
    pub nmse_db_rfloc_median: f64,
    pub nmse_db_rfloc_p90: f64,
    pub nmse_db_stored_paths_median: f64,
    pub nmse_db_stored_paths_p90: f64,
    pub magnitude_corr_rfloc_median: f64,
}

#[allow(dead_code)]
pub fn csi_fit(dir: &Path) -> Result<CsiFit, String> {
    use num_complex::Complex64;
    let text = rfloc_channel::bundled("factory-a").ok_or("no bundled factory-a")?;
    let scenario = Scenario::from_toml_str(text).map_err(|e| e.to_string())?;
    let ds = Dataset::read(dir).map_err(|e| e.to_string())?;
    let pos = ds.truth.positions.as_ref().ok_or("no positions")?;
    let delay = ds.truth.paths_delay_s.as_ref().ok_or("no path delays")?;
    let gain = ds.truth.paths_gain.as_ref().ok_or("no path gains")?;
    let (n, n_rx, n_p) = delay.dim();
    let plan =
        rfloc_channel::TonePlan::new(ds.meta.carrier_hz, ds.meta.subcarrier_offsets_hz.clone())
            .map_err(|e| e.to_string())?;
    let k = plan.len();
    let mut synth = rfloc_channel::Synthesizer::new(plan.clone());
    let model = ChannelModel::new(&scenario);
    // model CSI per link: rfloc (specular, order ≤ 2, no noise) and the stored ray-traced paths
    let mut ours = vec![vec![Complex64::new(0.0, 0.0); k]; n * n_rx];
    let mut stored = vec![vec![Complex64::new(0.0, 0.0); k]; n * n_rx];
    for f in 0..n {
        let tx = [pos[[f, 0]], pos[[f, 1]], pos[[f, 2]]];
        for r in 0..n_rx {
            let p = model.paths(r, 0, tx);
            let d: Vec<f64> = p.iter().map(|q| q.delay_s).collect();
            let g: Vec<Complex64> = p.iter().map(|q| q.gain).collect();
            synth.add_paths(&d, &g, &mut ours[f * n_rx + r]);
            let (mut d, mut g) = (Vec::new(), Vec::new());
            for i in 0..n_p {
                if delay[[f, r, i]].is_finite() {
                    d.push(delay[[f, r, i]]);
                    let x = gain[[f, r, i]];
                    g.push(Complex64::new(x.re as f64, x.im as f64));
                }
            }
            synth.add_paths(&d, &g, &mut stored[f * n_rx + r]);
        }
    }
    let meas = |f: usize, r: usize, i: usize| {
        let x = ds.csi[[f, r, 0, i]];
        Complex64::new(x.re as f64, x.im as f64)
    };
    // fit of a model vector m to the measured h with a complex scale: residual share
    let nmse = |h: &[Complex64], m: &[Complex64]| -> f64 {
        let hm: Complex64 = h.iter().zip(m).map(|(a, b)| a * b.conj()).sum();
        let mm: f64 = m.iter().map(|b| b.norm_sqr()).sum();
        let hh: f64 = h.iter().map(|a| a.norm_sqr()).sum();
        if mm <= 0.0 || hh <= 0.0 {
            return 1.0;
        }
        (1.0 - hm.norm_sqr() / (mm * hh)).max(1e-12)
    };
    let offsets = plan.offsets_hz().to_vec();
    let mut delays_ns = Vec::new();
    let (mut e_ours, mut e_stored, mut corr) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..n_rx {
        // receiver delay: the one that best explains the measured CSI by the stored paths
        let mut best = (0.0, f64::INFINITY);
        let mut h = vec![Complex64::new(0.0, 0.0); k];
        let mut m = vec![Complex64::new(0.0, 0.0); k];
        for step in 0..=450 {
            let dly = step as f64 * 0.1e-9;
            let ramp: Vec<Complex64> = offsets
                .iter()
                .map(|fk| Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * fk * dly))
                .collect();
            let mut total = 0.0;
            for f in (0..n).step_by(7) {
                for i in 0..k {
                    h[i] = meas(f, r, i);
                    m[i] = stored[f * n_rx + r][i] * ramp[i];
                }
                total += nmse(&h, &m);
            }
            if total < best.1 {
                best = (dly, total);
            }
        }
        // refine to 1 ps around the coarse optimum
        let (mut lo, mut hi) = (best.0 - 0.1e-9, best.0 + 0.1e-9);
        let cost = |dly: f64, h: &mut Vec<Complex64>, m: &mut Vec<Complex64>| -> f64 {
            let mut total = 0.0;
            for f in (0..n).step_by(7) {
                for i in 0..k {
                    h[i] = meas(f, r, i);
                    m[i] = stored[f * n_rx + r][i]
                        * Complex64::from_polar(
                            1.0,
                            -2.0 * std::f64::consts::PI * offsets[i] * dly,
                        );
                }
                total += nmse(h, m);
            }
            total
        };
        while hi - lo > 1e-12 {
            let a = lo + (hi - lo) / 3.0;
            let b = hi - (hi - lo) / 3.0;
            if cost(a, &mut h, &mut m) < cost(b, &mut h, &mut m) {
                hi = b;
            } else {
                lo = a;
            }
        }
        let dly = (lo + hi) / 2.0;
        delays_ns.push(dly * 1e9);
        let ramp: Vec<Complex64> = offsets
            .iter()
            .map(|fk| Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * fk * dly))
            .collect();
        for f in 0..n {
            for i in 0..k {
                h[i] = meas(f, r, i);
            }
            let mo: Vec<Complex64> = ours[f * n_rx + r]
                .iter()
                .zip(&ramp)
                .map(|(a, b)| a * b)
                .collect();
            let ms: Vec<Complex64> = stored[f * n_rx + r]
                .iter()
                .zip(&ramp)
                .map(|(a, b)| a * b)
                .collect();
            e_ours.push(10.0 * nmse(&h, &mo).log10());
            e_stored.push(10.0 * nmse(&h, &ms).log10());
            // magnitude correlation (insensitive to delay and phase offsets)
            let a: Vec<f64> = h.iter().map(|x| x.norm()).collect();
            let b: Vec<f64> = ours[f * n_rx + r].iter().map(|x| x.norm()).collect();
            let (ma, mb) = (
                a.iter().sum::<f64>() / k as f64,
                b.iter().sum::<f64>() / k as f64,
            );
            let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
            let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
            let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
            corr.push(if va > 0.0 && vb > 0.0 {
                cov / (va * vb).sqrt()
            } else {
                0.0
            });
        }
    }
    let q = |v: &mut Vec<f64>, p: f64| -> f64 {
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * p).round() as usize]
    };
    Ok(CsiFit {
        receiver_delay_ns: delays_ns,
        nmse_db_rfloc_median: q(&mut e_ours, 0.5),
        nmse_db_rfloc_p90: q(&mut e_ours, 0.9),
        nmse_db_stored_paths_median: q(&mut e_stored, 0.5),
        nmse_db_stored_paths_p90: q(&mut e_stored, 0.9),
        magnitude_corr_rfloc_median: q(&mut corr, 0.5),
    })
}
