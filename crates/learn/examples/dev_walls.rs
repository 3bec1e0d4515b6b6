//! DEVELOPMENT ONLY: a map of walls fitted jointly with the training positions, on dsp's path
//! sets (reports/learn.md, "A map of walls fitted jointly").
//!
//! The map: each receiver's position and offset, and one box of known relative orientation
//! (four vertical walls at right angles, a floor and a ceiling): `φ` and six face offsets in the
//! box's own axes. Every anchor is its receiver mirrored face by face, up to `ORDER` (1: 6
//! images, 2: 24). Positions (2D, the tag plane at z = 0) and that map are fitted by a robust
//! (Cauchy) Levenberg–Marquardt with the set matching of `nets::set_loss`, the positions
//! eliminated frame by frame (Schur complement).
//!
//! Usage: `dev_walls MODEL_DIR DATASET_DIR`. Env:
//! - `START=model|truth`: the model's map and per-frame positions (default), or an oracle start
//!   at the truth (positions, receivers, the box `HALL=lx,ly,lz` with the tag plane at `TAGZ`),
//!   moved by `PERTURB=σ` m (seed `PSEED`);
//! - `GT=1`: the true path delays (`common::gt_paths`) instead of dsp's;
//! - `ORDER` (2), `STRIDE` (every k-th training frame, 4), `DELTA` (m, 0.1), `ITERS` (40),
//!   `STAGES` (the δ of each fit, default `0.5,0.25,DELTA`), `MOTION` (the acceleration prior's
//!   weight, 0), `LOSS=gm` (Geman–McClure instead of Cauchy);
//! - `SCAN=0` skips the box's coordinate scans; `ALT=k` runs k rounds of receiver grid
//!   (±`REACH` m), box scan and fit first.
//!
//! It prints the training frames' error, the receivers' and the box after each step, where the
//! cost comes from, and the held-out frames located on the final map with `refine_frame`.
mod common;

use rfloc_csi::dataset::Dataset;
use rfloc_learn::features::{extract_paths, PathSets};
use rfloc_learn::geometry::dist;
use rfloc_learn::linalg::{quantile, solve_spd};
use rfloc_learn::refine::{refine_frame, MapView};
use rfloc_learn::Model;
use std::io::{Read, Write};

/// Box parameters: φ, then (lo, hi) offsets along the box's u, w and z axes.
const NB: usize = 7;

fn env<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Receiver `p` mirrored in the box `b` up to `order`; the receiver itself first.
fn images(p: [f64; 3], b: &[f64], order: usize) -> Vec<[f64; 3]> {
    let (s, c) = b[0].sin_cos();
    let to = |x: [f64; 3]| [c * x[0] + s * x[1], -s * x[0] + c * x[1], x[2]];
    let back = |q: [f64; 3]| [c * q[0] - s * q[1], s * q[0] + c * q[1], q[2]];
    let mirror = |q: [f64; 3], axis: usize, side: usize| {
        let mut r = q;
        r[axis] = 2.0 * b[1 + 2 * axis + side] - q[axis];
        r
    };
    let q = to(p);
    let mut out = vec![p];
    for axis in 0..3 {
        for side in 0..2 {
            out.push(back(mirror(q, axis, side)));
        }
    }
    if order >= 2 {
        for a1 in 0..3 {
            for a2 in a1 + 1..3 {
                for s1 in 0..2 {
                    for s2 in 0..2 {
                        out.push(back(mirror(mirror(q, a1, s1), a2, s2)));
                    }
                }
            }
        }
        for axis in 0..3 {
            for (s1, s2) in [(0, 1), (1, 0)] {
                out.push(back(mirror(mirror(q, axis, s1), axis, s2)));
            }
        }
    }
    out
}

/// The map: `g = [p_0 … p_{R−1} (3 each), β_0 … β_{R−1}, box (NB)]`.
struct Layout {
    r: usize,
    order: usize,
}

impl Layout {
    fn len(&self) -> usize {
        4 * self.r + NB
    }
    fn rx(&self, g: &[f64], r: usize) -> [f64; 3] {
        [g[3 * r], g[3 * r + 1], g[3 * r + 2]]
    }
    fn off(&self, r: usize) -> usize {
        3 * self.r + r
    }
    fn boxp<'a>(&self, g: &'a [f64]) -> &'a [f64] {
        &g[4 * self.r..]
    }
    fn anchors(&self, g: &[f64]) -> Vec<Vec<[f64; 3]>> {
        (0..self.r)
            .map(|r| images(self.rx(g, r), self.boxp(g), self.order))
            .collect()
    }
    /// ∂v/∂(p_r, box) per receiver and image: `[r][j][k]`, k over 3 + NB local parameters.
    fn anchor_jac(&self, g: &[f64]) -> Vec<Vec<Vec<[f64; 3]>>> {
        let h = 1e-6;
        (0..self.r)
            .map(|r| {
                let mut cols: Vec<Vec<[f64; 3]>> = Vec::new();
                for k in 0..3 + NB {
                    let idx = if k < 3 { 3 * r + k } else { 4 * self.r + k - 3 };
                    let (mut gp, mut gm) = (g.to_vec(), g.to_vec());
                    gp[idx] += h;
                    gm[idx] -= h;
                    let (ip, im) = (
                        images(self.rx(&gp, r), self.boxp(&gp), self.order),
                        images(self.rx(&gm, r), self.boxp(&gm), self.order),
                    );
                    cols.push(
                        ip.iter()
                            .zip(&im)
                            .map(|(a, b)| {
                                [
                                    (a[0] - b[0]) / (2.0 * h),
                                    (a[1] - b[1]) / (2.0 * h),
                                    (a[2] - b[2]) / (2.0 * h),
                                ]
                            })
                            .collect(),
                    );
                }
                // [k][j] → [j][k]
                let nj = cols[0].len();
                (0..nj)
                    .map(|j| (0..3 + NB).map(|k| cols[k][j]).collect())
                    .collect()
            })
            .collect()
    }
    fn global_index(&self, r: usize, k: usize) -> usize {
        if k < 3 {
            3 * r + k
        } else {
            4 * self.r + k - 3
        }
    }
}

/// `LOSS=gm`: Geman–McClure `δ² e²/(e² + δ²)`, bounded, so a path no image explains costs the
/// same wherever the images are; default Cauchy `δ² ln(1 + e²/δ²)` (as `nets::set_loss`).
fn bounded() -> bool {
    static B: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *B.get_or_init(|| std::env::var("LOSS").map(|v| v == "gm").unwrap_or(false))
}

fn rho(e: f64, d: f64) -> f64 {
    if bounded() {
        d * d * e * e / (e * e + d * d)
    } else {
        d * d * (1.0 + e * e / (d * d)).ln()
    }
}

/// The IRLS weight of `rho` (its derivative over `2e`).
fn irls(e: f64, d: f64) -> f64 {
    if bounded() {
        let q = e * e + d * d;
        d * d * d * d / (q * q)
    } else {
        1.0 / (1.0 + e * e / (d * d))
    }
}

/// Robust set cost of frames `frames` at positions `pos` (indexed like `frames`).
fn cost(
    ps: &PathSets,
    frames: &[usize],
    pos: &[[f64; 3]],
    anchors: &[Vec<[f64; 3]>],
    g: &[f64],
    lay: &Layout,
    d: f64,
) -> f64 {
    (0..lay.r)
        .map(|r| cost_rx(ps, frames, pos, &anchors[r], g[lay.off(r)], r, d))
        .sum()
}

/// The image nearest to an observed range `m` from `x` (offset `beta`): its index and the signed
/// residual `m − |x − v| − β` (the set matching of `nets::set_loss`).
fn nearest(m: f64, x: &[f64; 3], anchors: &[[f64; 3]], beta: f64) -> (usize, f64) {
    let (mut bj, mut be) = (0, f64::INFINITY);
    for (j, v) in anchors.iter().enumerate() {
        let e = m - dist(x, v) - beta;
        if e.abs() < be.abs() {
            (bj, be) = (j, e);
        }
    }
    (bj, be)
}

/// Interior frames of a track, `(prev, this, next)` as indices of the training list.
type Triples = Vec<(usize, usize, usize)>;

/// The acceleration prior `w Σ |x_i − (x_prev + x_next)/2|²` (horizontal).
fn motion_cost(pos: &[[f64; 3]], tri: &Triples, w: f64) -> f64 {
    tri.iter()
        .map(|&(a, i, b)| {
            (0..2)
                .map(|k| (pos[i][k] - 0.5 * (pos[a][k] + pos[b][k])).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        * w
}

/// Joint robust LM; returns the final cost. The motion prior enters each frame's block with its
/// exact gradient and a diagonal curvature (neighbours held within a step).
#[allow(clippy::too_many_arguments)]
fn fit(
    ps: &PathSets,
    frames: &[usize],
    pos: &mut [[f64; 3]],
    g: &mut [f64],
    lay: &Layout,
    d: f64,
    iters: usize,
    tri: &Triples,
    wm: f64,
) -> f64 {
    let (nr, p) = (ps.n_receivers, ps.max_paths);
    let ng = lay.len();
    let mut lambda = 1e-3;
    let total = |pos: &[[f64; 3]], g: &[f64]| {
        cost(ps, frames, pos, &lay.anchors(g), g, lay, d) + motion_cost(pos, tri, wm)
    };
    let mut cur = total(pos, g);
    for _ in 0..iters {
        let anchors = lay.anchors(g);
        let jac = lay.anchor_jac(g);
        let mut cg = vec![0.0; ng * ng];
        let mut bg = vec![0.0; ng];
        let mut blocks = Vec::with_capacity(frames.len());
        // the prior's descent direction (b = −½ ∂P/∂x) and curvature per frame
        let mut mb = vec![[0.0f64; 2]; frames.len()];
        let mut mh = vec![0.0f64; frames.len()];
        for &(a, i, b) in tri {
            for k in 0..2 {
                let r = pos[i][k] - 0.5 * (pos[a][k] + pos[b][k]);
                mb[i][k] -= wm * r;
                mb[a][k] += 0.5 * wm * r;
                mb[b][k] += 0.5 * wm * r;
            }
            mh[i] += wm;
            mh[a] += 0.25 * wm;
            mh[b] += 0.25 * wm;
        }
        for (i, &n) in frames.iter().enumerate() {
            let mut a = [mh[i], 0.0, 0.0, mh[i]];
            let mut bn = mb[i];
            let mut bx = vec![0.0; 2 * ng];
            for r in 0..nr {
                let beta = g[lay.off(r)];
                for k in 0..p {
                    let m = ps.range_m[(n * nr + r) * p + k];
                    if !m.is_finite() {
                        continue;
                    }
                    let (bj, be) = nearest(m, &pos[i], &anchors[r], beta);
                    let v = anchors[r][bj];
                    let dd = dist(&pos[i], &v).max(1e-9);
                    let u = [
                        (pos[i][0] - v[0]) / dd,
                        (pos[i][1] - v[1]) / dd,
                        (pos[i][2] - v[2]) / dd,
                    ];
                    let w = irls(be, d);
                    // J of the prediction: positions (2), globals (sparse)
                    let jx = [u[0], u[1]];
                    let mut jg: Vec<(usize, f64)> = Vec::with_capacity(4 + NB);
                    for (k2, col) in jac[r][bj].iter().enumerate() {
                        let val = -(u[0] * col[0] + u[1] * col[1] + u[2] * col[2]);
                        jg.push((lay.global_index(r, k2), val));
                    }
                    jg.push((lay.off(r), 1.0));
                    for a1 in 0..2 {
                        bn[a1] += w * be * jx[a1];
                        for a2 in 0..2 {
                            a[a1 * 2 + a2] += w * jx[a1] * jx[a2];
                        }
                        for &(q, val) in &jg {
                            bx[a1 * ng + q] += w * jx[a1] * val;
                        }
                    }
                    for &(q1, v1) in &jg {
                        bg[q1] += w * be * v1;
                        for &(q2, v2) in &jg {
                            cg[q1 * ng + q2] += w * v1 * v2;
                        }
                    }
                }
            }
            blocks.push((a, bn, bx));
        }
        let mut improved = false;
        for _try in 0..8 {
            // Schur complement over the frames
            let mut s = cg.clone();
            let mut rhs = bg.clone();
            for q in 0..ng {
                s[q * ng + q] += lambda * cg[q * ng + q] + 1e-9;
            }
            let mut inv_blocks = Vec::with_capacity(blocks.len());
            for (a, bn, bx) in &blocks {
                let a00 = a[0] * (1.0 + lambda) + 1e-9;
                let a11 = a[3] * (1.0 + lambda) + 1e-9;
                let det = a00 * a11 - a[1] * a[2];
                let inv = [a11 / det, -a[1] / det, -a[2] / det, a00 / det];
                // Binv_b = A⁻¹ B (2×ng), A⁻¹ b
                let mut ab = vec![0.0; 2 * ng];
                for r2 in 0..2 {
                    for q in 0..ng {
                        ab[r2 * ng + q] = inv[r2 * 2] * bx[q] + inv[r2 * 2 + 1] * bx[ng + q];
                    }
                }
                let ainvb = [
                    inv[0] * bn[0] + inv[1] * bn[1],
                    inv[2] * bn[0] + inv[3] * bn[1],
                ];
                for q1 in 0..ng {
                    rhs[q1] -= bx[q1] * ainvb[0] + bx[ng + q1] * ainvb[1];
                    for q2 in 0..ng {
                        s[q1 * ng + q2] -= bx[q1] * ab[q2] + bx[ng + q1] * ab[ng + q2];
                    }
                }
                inv_blocks.push((inv, ainvb, ab));
            }
            let mut dg = rhs.clone();
            if !solve_spd(&s, &mut dg, ng) {
                lambda *= 10.0;
                continue;
            }
            let g2: Vec<f64> = g.iter().zip(&dg).map(|(x, y)| x + y).collect();
            let pos2: Vec<[f64; 3]> = pos
                .iter()
                .zip(&inv_blocks)
                .map(|(x, (_, ainvb, ab))| {
                    let mut dx = [ainvb[0], ainvb[1]];
                    for q in 0..ng {
                        dx[0] -= ab[q] * dg[q];
                        dx[1] -= ab[ng + q] * dg[q];
                    }
                    [x[0] + dx[0], x[1] + dx[1], x[2]]
                })
                .collect();
            let c2 = total(&pos2, &g2);
            if c2 < cur {
                cur = c2;
                g.copy_from_slice(&g2);
                pos.copy_from_slice(&pos2);
                lambda = (lambda / 3.0).max(1e-7);
                improved = true;
                break;
            }
            lambda *= 4.0;
        }
        if !improved {
            break;
        }
    }
    cur
}

/// Receiver `r`'s robust set cost alone (its images `anchors`, offset `beta`).
fn cost_rx(
    ps: &PathSets,
    frames: &[usize],
    pos: &[[f64; 3]],
    anchors: &[[f64; 3]],
    beta: f64,
    r: usize,
    d: f64,
) -> f64 {
    let (nr, p) = (ps.n_receivers, ps.max_paths);
    let mut c = 0.0;
    for (i, &n) in frames.iter().enumerate() {
        for k in 0..p {
            let m = ps.range_m[(n * nr + r) * p + k];
            if !m.is_finite() {
                continue;
            }
            c += rho(nearest(m, &pos[i], anchors, beta).1, d);
        }
    }
    c
}

/// The line-of-sight offset of receiver `r` at `p`: the median of `first − |x − p|` over the
/// residuals within 0.5 m of their 20th percentile.
fn los_beta(ps: &PathSets, frames: &[usize], pos: &[[f64; 3]], p: &[f64; 3], r: usize) -> f64 {
    let nr = ps.n_receivers;
    let res: Vec<f64> = frames
        .iter()
        .enumerate()
        .map(|(i, &n)| ps.first_m[n * nr + r] - dist(&pos[i], p))
        .filter(|v| v.is_finite())
        .collect();
    let lo = quantile(&res, 0.2);
    rfloc_learn::linalg::median(
        &res.into_iter()
            .filter(|v| *v < lo + 0.5)
            .collect::<Vec<_>>(),
    )
}

/// Each receiver by a grid search (the box and the positions held): horizontal ±`reach` m in
/// 0.25 m steps, height 0.5–9 m in 0.25 m steps, its offset from the line-of-sight rule.
fn grid_receivers(
    ps: &PathSets,
    frames: &[usize],
    pos: &[[f64; 3]],
    g: &mut [f64],
    lay: &Layout,
    d: f64,
    reach: f64,
) {
    let sub: Vec<usize> = (0..frames.len()).step_by(5).collect();
    let fr: Vec<usize> = sub.iter().map(|&i| frames[i]).collect();
    let ps_pos: Vec<[f64; 3]> = sub.iter().map(|&i| pos[i]).collect();
    let bx = lay.boxp(g).to_vec();
    let steps = (reach / 0.25).round() as i32;
    for r in 0..lay.r {
        let c0 = lay.rx(g, r);
        let mut best = (f64::INFINITY, c0, g[lay.off(r)]);
        for ix in -steps..=steps {
            for iy in -steps..=steps {
                for ih in 0..=34 {
                    let p = [
                        c0[0] + 0.25 * ix as f64,
                        c0[1] + 0.25 * iy as f64,
                        0.5 + 0.25 * ih as f64,
                    ];
                    let beta = los_beta(ps, &fr, &ps_pos, &p, r);
                    let c = cost_rx(ps, &fr, &ps_pos, &images(p, &bx, lay.order), beta, r, d);
                    if c < best.0 {
                        best = (c, p, beta);
                    }
                }
            }
        }
        g[3 * r..3 * r + 3].copy_from_slice(&best.1);
        g[lay.off(r)] = best.2;
    }
}

/// Coordinate scans of the box's φ and offsets with everything else held.
fn scan_box(
    ps: &PathSets,
    frames: &[usize],
    pos: &[[f64; 3]],
    g: &mut [f64],
    lay: &Layout,
    d: f64,
) {
    let b0 = 4 * lay.r;
    for _sweep in 0..2 {
        let zmax = (0..lay.r).map(|r| g[3 * r + 2]).fold(f64::MIN, f64::max);
        for k in 0..NB {
            let (lo, hi, step) = match k {
                0 => (g[b0] - 0.2, g[b0] + 0.2, 0.005),
                5 => (-8.0, -0.2, 0.05),
                6 => (zmax + 0.2, zmax + 8.0, 0.05),
                _ => (g[b0 + k] - 4.0, g[b0 + k] + 4.0, 0.05),
            };
            let centre = g[b0 + k];
            let (mut best, mut bv) = (f64::INFINITY, centre);
            let steps = ((hi - lo) / step) as i32;
            for s in 0..=steps {
                let v = lo + s as f64 * step;
                g[b0 + k] = v;
                let c = cost(ps, frames, pos, &lay.anchors(g), g, lay, d);
                if c < best {
                    best = c;
                    bv = v;
                }
            }
            g[b0 + k] = bv;
        }
    }
}

/// dsp's path sets with the model's options, cached under /tmp.
fn cached_paths(ds: &Dataset, model: &Model, tag: &str) -> PathSets {
    let file = format!("/tmp/aug/ps-{tag}.bin");
    if let Ok(mut f) = std::fs::File::open(&file) {
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        let v: Vec<f64> = b
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let (n, r, p) = (v[0] as usize, v[1] as usize, v[2] as usize);
        let mut ps = PathSets::empty(n, r, p);
        let mut o = 3;
        ps.range_m.copy_from_slice(&v[o..o + n * r * p]);
        o += n * r * p;
        ps.power_db.copy_from_slice(&v[o..o + n * r * p]);
        o += n * r * p;
        ps.first_m.copy_from_slice(&v[o..o + n * r]);
        o += n * r;
        ps.snapshots = v[o..o + n].iter().map(|x| *x as u16).collect();
        return ps;
    }
    let ps = extract_paths(ds, &model.meta.path_options, &|_| {}).unwrap();
    let mut v = vec![
        ps.n_frames as f64,
        ps.n_receivers as f64,
        ps.max_paths as f64,
    ];
    v.extend(&ps.range_m);
    v.extend(&ps.power_db);
    v.extend(&ps.first_m);
    v.extend(ps.snapshots.iter().map(|x| *x as f64));
    let mut f = std::fs::File::create(&file).unwrap();
    for x in v {
        f.write_all(&x.to_le_bytes()).unwrap();
    }
    ps
}

fn report(
    label: &str,
    pos: &[[f64; 3]],
    truth: &[[f64; 3]],
    g: &[f64],
    lay: &Layout,
    rx_true: &[[f64; 3]],
) {
    let (iso, e) = common::rigid_fit(pos, truth, &vec![1.0; pos.len()]);
    let tagz = truth.iter().map(|x| x[2]).sum::<f64>() / truth.len() as f64;
    let rx: Vec<String> = (0..lay.r)
        .map(|r| {
            let q = iso.apply(&lay.rx(g, r));
            let t = rx_true[r];
            format!(
                "{:.2}/{:.2}",
                ((q[0] - t[0]).powi(2) + (q[1] - t[1]).powi(2)).sqrt(),
                g[3 * r + 2].abs() - (t[2] - tagz)
            )
        })
        .collect();
    let b = lay.boxp(g);
    println!(
        "{label}: train CEP50 {:.3} CE95 {:.3} m; receivers xy off/height error {:?}; box φ {:.1}° u {:.2}..{:.2} w {:.2}..{:.2} z {:.2}..{:.2}; offsets {:?}",
        quantile(&e, 0.5),
        quantile(&e, 0.95),
        rx,
        b[0].to_degrees(),
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6],
        (0..lay.r).map(|r| format!("{:.2}", g[lay.off(r)])).collect::<Vec<_>>()
    );
}

fn main() {
    let mut a = std::env::args().skip(1);
    let mdir = a.next().expect("MODEL_DIR");
    let src = a.next().expect("DATASET");
    let model = Model::load(std::path::Path::new(&mdir)).unwrap();
    let ds = common::load(&src);
    let tag = src.replace('/', "_");
    let t0 = std::time::Instant::now();
    let ps = cached_paths(&ds, &model, &tag);
    eprintln!("paths {:.1} s", t0.elapsed().as_secs_f64());
    let order: usize = env("ORDER", 2);
    let stride: usize = env("STRIDE", 4);
    let delta: f64 = env("DELTA", 0.1);
    let iters: usize = env("ITERS", 40);
    let start = std::env::var("START").unwrap_or("model".into());
    let nr = ps.n_receivers;
    let lay = Layout { r: nr, order };
    let t = ds.truth.positions.as_ref().unwrap();
    let truth_of = |i: usize| [t[[i, 0]], t[[i, 1]], t[[i, 2]]];
    let rx_true = ds.meta.receiver_positions().unwrap();
    let held = &model.meta.metrics.holdout_tracks;
    let train: Vec<usize> = (0..ds.n_frames())
        .filter(|&i| !held.contains(&ds.track_of(i)))
        .step_by(stride)
        .collect();
    let test: Vec<usize> = (0..ds.n_frames())
        .filter(|&i| held.contains(&ds.track_of(i)))
        .collect();
    let truth_train: Vec<[f64; 3]> = train.iter().map(|&i| truth_of(i)).collect();
    let wm: f64 = env("MOTION", 0.0);
    let tri: Triples = (1..train.len().saturating_sub(1))
        .filter(|&i| {
            let (a, b) = (train[i - 1], train[i + 1]);
            ds.track_of(a) == ds.track_of(train[i])
                && ds.track_of(b) == ds.track_of(train[i])
                && ds.timestamps[b] - ds.timestamps[a] < 2.0
        })
        .map(|i| (i - 1, i, i + 1))
        .collect();
    let truth_test: Vec<[f64; 3]> = test.iter().map(|&i| truth_of(i)).collect();
    // the model's per-frame positions: the start of START=model, and the peer on held-out frames
    let located = model.locate_paths(&ps, true);
    // GT=1: fit (and locate the held-out frames) on the true path delays instead
    let ps = if std::env::var("GT").is_ok() {
        common::gt_paths(&ds, 8, 0.01)
    } else {
        ps
    };
    let model_test: Vec<[f64; 3]> = test.iter().map(|&i| located[i].position).collect();
    let (_, e_model) = common::rigid_fit(&model_test, &truth_test, &vec![1.0; test.len()]);
    println!(
        "{} frames; training {} (every {stride}th), held-out {}; order {order}; model per frame held-out CEP50 {:.3} CE95 {:.3} m",
        ds.n_frames(),
        train.len(),
        test.len(),
        quantile(&e_model, 0.5),
        quantile(&e_model, 0.95)
    );
    let mut g = vec![0.0; lay.len()];
    let mut pos: Vec<[f64; 3]>;
    if start == "truth" {
        let tagz: f64 = env("TAGZ", 1.2);
        let hall: Vec<f64> = std::env::var("HALL")
            .unwrap_or("30,20,8".into())
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        pos = truth_train.iter().map(|x| [x[0], x[1], 0.0]).collect();
        for r in 0..nr {
            g[3 * r] = rx_true[r][0];
            g[3 * r + 1] = rx_true[r][1];
            g[3 * r + 2] = rx_true[r][2] - tagz;
        }
        // offsets from the truth on the training frames
        for r in 0..nr {
            g[lay.off(r)] = los_beta(&ps, &train, &truth_train, &rx_true[r], r);
        }
        let b = 4 * nr;
        g[b..b + NB].copy_from_slice(&[0.0, 0.0, hall[0], 0.0, hall[1], -tagz, hall[2] - tagz]);
        // PERTURB=σ: the truth moved by σ (m) — receivers, box offsets, each frame's position
        // (offsets by σ too, φ by σ/10 rad): how far the basin reaches
        let sigma: f64 = env("PERTURB", 0.0);
        if sigma > 0.0 {
            use rand::SeedableRng;
            use rand_distr::{Distribution, Normal};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(env("PSEED", 1));
            let nd = Normal::new(0.0, sigma).unwrap();
            for (k, v) in g.iter_mut().enumerate() {
                *v += nd.sample(&mut rng) * if k == b { 0.1 } else { 1.0 };
            }
            for x in pos.iter_mut() {
                x[0] += nd.sample(&mut rng);
                x[1] += nd.sample(&mut rng);
            }
        }
    } else {
        pos = train.iter().map(|&i| located[i].position).collect();
        for r in 0..nr {
            // a 2D model's receiver heights have no sign: put every receiver above the tags
            let rx = model.meta.receivers[r].anchors[0].position;
            g[3 * r..3 * r + 3].copy_from_slice(&[rx[0], rx[1], rx[2].abs()]);
            g[lay.off(r)] = model.meta.receivers[r].offset_m;
        }
        init_box(&model, &pos, &mut g, &lay);
    }
    let truth_train_z: Vec<[f64; 3]> = truth_train.clone();
    report("start", &pos, &truth_train_z, &g, &lay, &rx_true);
    if std::env::var("SCAN").map(|v| v != "0").unwrap_or(true) {
        scan_box(&ps, &train, &pos, &mut g, &lay, delta);
        report("box scanned", &pos, &truth_train_z, &g, &lay, &rx_true);
    }
    let t1 = std::time::Instant::now();
    // ALT=k: k rounds of (receiver grid, box scan, joint fit at the last stage's δ) first
    let alt: usize = env("ALT", 0);
    let reach: f64 = env("REACH", 2.0);
    for k in 0..alt {
        grid_receivers(&ps, &train, &pos, &mut g, &lay, delta, reach);
        report(
            &format!("round {k}: receivers gridded"),
            &pos,
            &truth_train_z,
            &g,
            &lay,
            &rx_true,
        );
        scan_box(&ps, &train, &pos, &mut g, &lay, delta);
        report(
            &format!("round {k}: box scanned"),
            &pos,
            &truth_train_z,
            &g,
            &lay,
            &rx_true,
        );
        let c = fit(&ps, &train, &mut pos, &mut g, &lay, delta, iters, &tri, wm);
        report(
            &format!("round {k}: joint fit (cost {c:.1})"),
            &pos,
            &truth_train_z,
            &g,
            &lay,
            &rx_true,
        );
    }
    let stages: Vec<f64> = std::env::var("STAGES")
        .unwrap_or(format!("0.5,0.25,{delta}"))
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    for (k, &dl) in stages.iter().enumerate() {
        println!(
            "  cost before fit {k}: paths {:.1} + motion {:.1}",
            cost(&ps, &train, &pos, &lay.anchors(&g), &g, &lay, dl),
            motion_cost(&pos, &tri, wm)
        );
        let c = fit(&ps, &train, &mut pos, &mut g, &lay, dl, iters, &tri, wm);
        report(
            &format!("joint fit {k} (δ {dl} m, cost {c:.1})"),
            &pos,
            &truth_train_z,
            &g,
            &lay,
            &rx_true,
        );
    }
    eprintln!("fit {:.1} s", t1.elapsed().as_secs_f64());
    diagnose(&ps, &train, &pos, &g, &lay, delta, &tri, wm);
    // held-out frames: the product's per-frame solver on the walls map, from the model's start
    // (START=model) or from the truth (START=truth)
    let anchors = lay.anchors(&g);
    let m = anchors[0].len();
    let flat: Vec<[f64; 3]> = anchors.iter().flatten().copied().collect();
    let valid = vec![true; flat.len()];
    let offs: Vec<f64> = (0..nr).map(|r| g[lay.off(r)]).collect();
    let view = MapView {
        anchors: &flat,
        valid: &valid,
        per_receiver: m,
        offsets_m: &offs,
    };
    let starts: Vec<[f64; 3]> = if start == "truth" {
        truth_test.iter().map(|x| [x[0], x[1], 0.0]).collect()
    } else {
        model_test.clone()
    };
    let walls_test: Vec<[f64; 3]> = test
        .iter()
        .zip(&starts)
        .map(|(&n, x0)| refine_frame(&ps, n, &view, *x0, 2, delta, 30).0)
        .collect();
    let (_, e) = common::rigid_fit(&walls_test, &truth_test, &vec![1.0; test.len()]);
    println!(
        "held-out per frame on the walls map: CEP50 {:.3} CE95 {:.3} m (model: {:.3} / {:.3})",
        quantile(&e, 0.5),
        quantile(&e, 0.95),
        quantile(&e_model, 0.5),
        quantile(&e_model, 0.95)
    );
}

/// Where the cost comes from: each link's earliest path against its later ones, inlier shares
/// (|e| < δ) and the image order the paths match.
#[allow(clippy::too_many_arguments)]
fn diagnose(
    ps: &PathSets,
    frames: &[usize],
    pos: &[[f64; 3]],
    g: &[f64],
    lay: &Layout,
    d: f64,
    tri: &Triples,
    wm: f64,
) {
    let (nr, p) = (ps.n_receivers, ps.max_paths);
    let anchors = lay.anchors(g);
    let (mut c_first, mut c_later, mut n_first, mut n_later, mut in_first, mut in_later) =
        (0.0, 0.0, 0usize, 0usize, 0usize, 0usize);
    let mut by_image = vec![0usize; anchors[0].len()];
    let (mut cauchy, mut gm) = (0.0, 0.0);
    for (i, &n) in frames.iter().enumerate() {
        for r in 0..nr {
            let beta = g[lay.off(r)];
            let mut first = true;
            for k in 0..p {
                let m = ps.range_m[(n * nr + r) * p + k];
                if !m.is_finite() {
                    continue;
                }
                let (bj, be) = nearest(m, &pos[i], &anchors[r], beta);
                let be = be.abs();
                if be < d {
                    by_image[bj] += 1;
                }
                cauchy += d * d * (1.0 + be * be / (d * d)).ln();
                gm += d * d * be * be / (be * be + d * d);
                if first {
                    c_first += rho(be, d);
                    n_first += 1;
                    in_first += (be < d) as usize;
                    first = false;
                } else {
                    c_later += rho(be, d);
                    n_later += 1;
                    in_later += (be < d) as usize;
                }
            }
        }
    }
    println!(
        "diagnosis (δ {d}): Cauchy {cauchy:.1}, Geman–McClure {gm:.1}, motion {:.1}; earliest paths {n_first}, cost {c_first:.1}, inliers {:.1} %; later paths {n_later}, cost {c_later:.1}, inliers {:.1} %; inliers by image (receiver, 6 first order, 12 perpendicular pairs, 6 parallel pairs) {:?}",
        motion_cost(pos, tri, wm),
        100.0 * in_first as f64 / n_first as f64,
        100.0 * in_later as f64 / n_later as f64,
        by_image
    );
}

/// The box from the model's mirror anchors: each anchor's bisector plane with its receiver.
fn init_box(model: &Model, pos: &[[f64; 3]], g: &mut [f64], lay: &Layout) {
    let mut quads = (0.0, 0.0);
    let mut planes = Vec::new();
    let mut floors = Vec::new();
    let mut ceilings = Vec::new();
    for rm in &model.meta.receivers {
        let sz = rm.anchors[0].position[2].signum();
        let flip = |x: [f64; 3]| [x[0], x[1], sz * x[2]];
        let p = flip(rm.anchors[0].position);
        for a in rm.anchors.iter().skip(1) {
            let v = flip(a.position);
            let dv = [v[0] - p[0], v[1] - p[1], v[2] - p[2]];
            let l = (dv[0] * dv[0] + dv[1] * dv[1] + dv[2] * dv[2]).sqrt();
            if l < 1e-6 {
                continue;
            }
            let n = [dv[0] / l, dv[1] / l, dv[2] / l];
            let mid = [
                (v[0] + p[0]) / 2.0,
                (v[1] + p[1]) / 2.0,
                (v[2] + p[2]) / 2.0,
            ];
            if n[2].abs() > 0.8 {
                if mid[2] < 0.0 {
                    floors.push(mid[2]);
                } else {
                    ceilings.push(mid[2]);
                }
            } else if n[2].abs() < 0.3 {
                let th = n[1].atan2(n[0]);
                quads.0 += (4.0 * th).cos();
                quads.1 += (4.0 * th).sin();
                planes.push((n, mid));
            }
        }
    }
    let phi = quads.1.atan2(quads.0) / 4.0;
    let (s, c) = phi.sin_cos();
    let to = |x: [f64; 3]| [c * x[0] + s * x[1], -s * x[0] + c * x[1]];
    let q: Vec<[f64; 2]> = pos.iter().map(|x| to(*x)).collect();
    let centre = [
        q.iter().map(|x| x[0]).sum::<f64>() / q.len() as f64,
        q.iter().map(|x| x[1]).sum::<f64>() / q.len() as f64,
    ];
    let lo_hi = |axis: usize| {
        let vals: Vec<f64> = q.iter().map(|x| x[axis]).collect();
        (quantile(&vals, 0.0) - 1.0, quantile(&vals, 1.0) + 1.0)
    };
    let mut sides: [Vec<f64>; 4] = Default::default();
    for (n, mid) in &planes {
        let nq = to(*n);
        let axis = if nq[0].abs() > nq[1].abs() { 0 } else { 1 };
        let m = to(*mid)[axis];
        let side = if m < centre[axis] { 0 } else { 1 };
        sides[2 * axis + side].push(m);
    }
    let b = 4 * lay.r;
    g[b] = phi;
    for axis in 0..2 {
        let (lo, hi) = lo_hi(axis);
        g[b + 1 + 2 * axis] = if sides[2 * axis].is_empty() {
            lo
        } else {
            rfloc_learn::linalg::median(&sides[2 * axis])
        };
        g[b + 2 + 2 * axis] = if sides[2 * axis + 1].is_empty() {
            hi
        } else {
            rfloc_learn::linalg::median(&sides[2 * axis + 1])
        };
    }
    let zmax = (0..lay.r).map(|r| g[3 * r + 2]).fold(f64::MIN, f64::max);
    g[b + 5] = if floors.is_empty() {
        -1.0
    } else {
        rfloc_learn::linalg::median(&floors)
    };
    g[b + 6] = if ceilings.is_empty() {
        zmax + 1.0
    } else {
        rfloc_learn::linalg::median(&ceilings)
    };
    eprintln!(
        "box from the anchors: {} vertical planes {:?}, {} floors, {} ceilings",
        planes.len(),
        sides.iter().map(|s| s.len()).collect::<Vec<_>>(),
        floors.len(),
        ceilings.len()
    );
}
