//! DEVELOPMENT ONLY: does a map of *shared reflecting planes* beat free virtual anchors?
//! Trains a model, locates its training frames, searches planes shared by all receivers
//! (vertical walls over (θ, d), horizontal layers over z; greedy, each plane scored by the later
//! paths the receivers' mirror images in it explain), refits receivers + planes (robust LM,
//! positions fixed), and locates the held-out tracks with anchors = receivers and their images.
//! Prints each receiver's learned height and offset. Truth only scores.
//! Usage: `dev_planes <scenario or dataset>`; env PLANES (default 6), TOL (m, default 0.2),
//! HTRUE=1 (oracle: the true receiver heights above the tags, offsets refitted to them), GT=1
//! (true path delays), ALT=n (n rounds of relocating the training frames and refitting),
//! ONELAYER=1 (at most one floor and one ceiling plane).
mod common;
use rfloc_learn::geometry::dist;
use rfloc_learn::linalg::{quantile, solve_spd};
use rfloc_learn::refine::{refine_frame, MapView};
use rfloc_learn::{train_recording, Recording, TrainConfig};

fn reflect(r: &[f64; 3], pl: &[f64; 4]) -> [f64; 3] {
    let nn = (pl[0] * pl[0] + pl[1] * pl[1] + pl[2] * pl[2])
        .sqrt()
        .max(1e-12);
    let n = [pl[0] / nn, pl[1] / nn, pl[2] / nn];
    let s = n[0] * r[0] + n[1] * r[1] + n[2] * r[2] - pl[3];
    [
        r[0] - 2.0 * s * n[0],
        r[1] - 2.0 * s * n[1],
        r[2] - 2.0 * s * n[2],
    ]
}

fn main() {
    let src = std::env::args().nth(1).unwrap_or("factory-hall".into());
    let ds = common::load(&src);
    // GT=1: the true path delays (perfect super-resolution) instead of dsp's
    let ps = common::paths(&ds);
    let n = ds.n_frames();
    let rec = Recording::new(&ds, ps.clone());
    let model = train_recording(&rec, &TrainConfig::default(), &mut |_| {}).unwrap();
    let t = ds.truth.positions.as_ref().unwrap();
    let held = &model.meta.metrics.holdout_tracks;
    let test: Vec<usize> = (0..n).filter(|&i| held.contains(&ds.track_of(i))).collect();
    let train: Vec<usize> = (0..n)
        .filter(|&i| !held.contains(&ds.track_of(i)) && i % 3 == 0)
        .collect();
    let pse = ps.select(&test);
    let pst = ps.select(&train);
    let te: Vec<[f64; 3]> = test
        .iter()
        .map(|&i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]])
        .collect();
    let loc = model.locate_paths(&pse, true);
    let s0 = common::score(&loc.iter().map(|l| l.position).collect::<Vec<_>>(), &te);
    println!("learned map: per frame CEP50 {:.3} CE95 {:.3}", s0.0, s0.1);
    let train_pos: Vec<[f64; 3]> = model
        .locate_paths(&pst, true)
        .iter()
        .map(|l| l.position)
        .collect();

    // planes from the learned anchors
    let (slots, _) = model.meta.anchor_slots();
    let m = model.meta.per_receiver;
    let nr = ps.n_receivers;
    let offs = model.meta.offsets();
    let mut rx: Vec<[f64; 3]> = (0..nr).map(|r| slots[r * m]).collect();
    let mut offs = offs;
    if std::env::var("HTRUE").is_ok() {
        // oracle: the true receiver heights above the tags, offsets refitted to them
        let rxt = ds.meta.receiver_positions().unwrap();
        let ztag = te.iter().map(|x| x[2]).sum::<f64>() / te.len() as f64;
        for r in 0..nr {
            let sign = if rx[r][2] < 0.0 { -1.0 } else { 1.0 };
            rx[r][2] = sign * (rxt[r][2] - ztag);
            let res: Vec<f64> = train_pos
                .iter()
                .enumerate()
                .map(|(i, x)| pst.first_m[i * nr + r] - dist(x, &rx[r]))
                .filter(|v| v.is_finite())
                .collect();
            let lo = quantile(&res, 0.2);
            let low: Vec<f64> = res.iter().copied().filter(|v| *v < lo + 0.5).collect();
            offs[r] = quantile(&low, 0.5);
        }
    }
    // Search shared planes directly: every receiver's mirror image in a candidate plane must
    // explain later paths of that receiver. Vertical walls (θ, d) and horizontal layers (z = d).
    let p = ps.max_paths;
    let sub: Vec<usize> = (0..train_pos.len())
        .step_by((train_pos.len() / 400).max(1))
        .collect();
    let tol = std::env::var("TOL").map_or(0.2, |v| v.parse().unwrap());
    let mut explained = vec![false; train_pos.len() * nr * p];
    for &i in &sub {
        for r in 0..nr {
            for k in 0..p {
                let o = pst.range_m[(i * nr + r) * p + k];
                if o.is_finite() && (o - offs[r] - dist(&train_pos[i], &rx[r])).abs() < tol {
                    explained[(i * nr + r) * p + k] = true;
                }
            }
        }
    }
    let support = |pl: &[f64; 4], explained: &[bool]| -> (usize, Vec<usize>) {
        let mut cnt = 0;
        let mut hits = Vec::new();
        let imgs: Vec<[f64; 3]> = rx.iter().map(|r| reflect(r, pl)).collect();
        for &i in &sub {
            for r in 0..nr {
                let d = dist(&train_pos[i], &imgs[r]) + offs[r];
                for k in 0..p {
                    let q = (i * nr + r) * p + k;
                    let o = pst.range_m[q];
                    if !explained[q] && o.is_finite() && (o - d).abs() < tol {
                        cnt += 1;
                        hits.push(q);
                    }
                }
            }
        }
        (cnt, hits)
    };
    let n_planes: usize = std::env::var("PLANES").map_or(6, |v| v.parse().unwrap());
    let mut pl: Vec<[f64; 4]> = Vec::new();
    for round in 0..n_planes {
        let mut best = ([0.0; 4], 0usize, Vec::new());
        for deg in 0..360 {
            let th = (deg as f64).to_radians();
            let nrm = [th.cos(), th.sin(), 0.0];
            let hi = train_pos
                .iter()
                .map(|x| nrm[0] * x[0] + nrm[1] * x[1])
                .fold(f64::NEG_INFINITY, f64::max);
            let mut d = hi;
            while d < hi + 25.0 {
                let cand = [nrm[0], nrm[1], 0.0, d];
                let (c, h) = support(&cand, &explained);
                if c > best.1 {
                    best = (cand, c, h);
                }
                d += 0.2;
            }
        }
        let mut z: f64 = -15.0;
        let one_layer = std::env::var("ONELAYER").is_ok();
        while z < 15.0 {
            let cand = [0.0, 0.0, 1.0, z];
            // ONELAYER=1: at most one floor (z < 0) and one ceiling (z > 0)
            if one_layer
                && pl
                    .iter()
                    .any(|q: &[f64; 4]| q[2].abs() > 0.9 && q[3].signum() == z.signum())
            {
                z += 0.1;
                continue;
            }
            let (c, h) = support(&cand, &explained);
            if c > best.1 {
                best = (cand, c, h);
            }
            z += 0.1;
        }
        eprintln!(
            "plane {round}: n=({:.2},{:.2},{:.2}) d={:.2} explains {} paths",
            best.0[0], best.0[1], best.0[2], best.0[3], best.1
        );
        if best.1 < 20 {
            break;
        }
        for q in best.2 {
            explained[q] = true;
        }
        pl.push(best.0);
    }
    // Alternate: receivers + planes + offsets by robust LM with the positions fixed, then every
    // training frame relocated on that map (ALT rounds; 0 = one map fit only).
    let mut train_pos = train_pos;
    let train_truth: Vec<[f64; 3]> = train
        .iter()
        .map(|&i| [t[[i, 0]], t[[i, 1]], t[[i, 2]]])
        .collect();
    let rounds: usize = std::env::var("ALT").map_or(0, |v| v.parse().unwrap());
    let mut pl = pl;
    for round in 0..=rounds {
        let (rx2, pl2, offs2) = fit_map(&pst, &train_pos, &rx, &pl, &offs);
        rx = rx2;
        pl = pl2;
        offs = offs2;
        let anchors = plane_anchors(&rx, &pl);
        let va = vec![true; anchors.len()];
        let view = MapView {
            anchors: &anchors,
            valid: &va,
            per_receiver: 1 + pl.len(),
            offsets_m: &offs,
        };
        let x: Vec<[f64; 3]> = loc
            .iter()
            .enumerate()
            .map(|(k, l)| refine_frame(&pse, k, &view, l.encoder, 2, 0.1, 20).0)
            .collect();
        let s1 = common::score(&x, &te);
        let s_tr = common::score(&train_pos, &train_truth);
        println!(
            "round {round}: plane map ({} planes): train CEP50 {:.3}; held-out per frame CEP50 {:.3} CE95 {:.3}",
            pl.len(), s_tr.0, s1.0, s1.1
        );
        if round == rounds {
            let iso = common::rigid_fit(&x, &te, &vec![1.0; x.len()]).0;
            let rxt = ds.meta.receiver_positions().unwrap();
            for r in 0..nr {
                let a = iso.apply(&rx[r]);
                println!(
                    "rx{r}: xy error {:.2} m, height {:.2} m (true {:.2}), offset {:.2} m",
                    ((a[0] - rxt[r][0]).powi(2) + (a[1] - rxt[r][1]).powi(2)).sqrt(),
                    rx[r][2].abs(),
                    rxt[r][2] - te[0][2],
                    offs[r]
                );
            }
            break;
        }
        for (i, x) in train_pos.iter_mut().enumerate() {
            *x = refine_frame(&pst, i, &view, *x, 2, 0.1, 15).0;
        }
    }
}

/// Receivers and their images in the planes, `[R · (1 + K)]`.
fn plane_anchors(rx: &[[f64; 3]], pl: &[[f64; 4]]) -> Vec<[f64; 3]> {
    rx.iter()
        .flat_map(|r| {
            std::iter::once(*r)
                .chain(pl.iter().map(|q| reflect(r, q)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Robust LM (Cauchy 0.1 m, numeric Jacobian) over receivers, planes and offsets with the
/// positions fixed.
fn fit_map(
    ps: &rfloc_learn::features::PathSets,
    pos: &[[f64; 3]],
    rx: &[[f64; 3]],
    pl: &[[f64; 4]],
    offs: &[f64],
) -> (Vec<[f64; 3]>, Vec<[f64; 4]>, Vec<f64>) {
    let (nr, p, kk) = (rx.len(), ps.max_paths, pl.len());
    let np = 3 * nr + 4 * kk + nr;
    let mut v: Vec<f64> = rx
        .iter()
        .flat_map(|r| r.to_vec())
        .chain(pl.iter().flat_map(|q| q.to_vec()))
        .chain(offs.iter().copied())
        .collect();
    let unpack = |v: &[f64]| -> (Vec<[f64; 3]>, Vec<[f64; 4]>, Vec<f64>) {
        let rx = (0..nr)
            .map(|r| [v[3 * r], v[3 * r + 1], v[3 * r + 2]])
            .collect();
        let pl = (0..kk)
            .map(|j| {
                let o = 3 * nr + 4 * j;
                [v[o], v[o + 1], v[o + 2], v[o + 3]]
            })
            .collect();
        let of = v[3 * nr + 4 * kk..].to_vec();
        (rx, pl, of)
    };
    let resid = |v: &[f64]| -> Vec<f64> {
        let (rx, pl, of) = unpack(v);
        let anchors = plane_anchors(&rx, &pl);
        let m = 1 + kk;
        let mut out = Vec::new();
        for (i, x) in pos.iter().enumerate() {
            for r in 0..nr {
                for k in 0..p {
                    let o = ps.range_m[(i * nr + r) * p + k];
                    if !o.is_finite() {
                        continue;
                    }
                    let e = anchors[r * m..(r + 1) * m]
                        .iter()
                        .map(|a| o - of[r] - dist(x, a))
                        .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                        .unwrap();
                    out.push(e);
                }
            }
        }
        out
    };
    let delta = 0.1;
    let cost = |e: &[f64]| {
        e.iter()
            .map(|v| 0.5 * delta * delta * (1.0 + (v / delta).powi(2)).ln())
            .sum::<f64>()
    };
    let mut e0 = resid(&v);
    let mut c0 = cost(&e0);
    let mut lambda = 1e-2;
    for _ in 0..25 {
        let w: Vec<f64> = e0
            .iter()
            .map(|e| 1.0 / (1.0 + (e / delta).powi(2)))
            .collect();
        let jac: Vec<Vec<f64>> = (0..np)
            .map(|a| {
                let mut vp = v.clone();
                vp[a] += 1e-5;
                resid(&vp)
                    .iter()
                    .zip(&e0)
                    .map(|(x, y)| (x - y) / 1e-5)
                    .collect()
            })
            .collect();
        let mut h = vec![0.0; np * np];
        let mut g = vec![0.0; np];
        for a in 0..np {
            for b in a..np {
                let s: f64 = (0..e0.len()).map(|q| w[q] * jac[a][q] * jac[b][q]).sum();
                h[a * np + b] = s;
                h[b * np + a] = s;
            }
            g[a] = -(0..e0.len()).map(|q| w[q] * jac[a][q] * e0[q]).sum::<f64>();
        }
        let mut improved = false;
        for _ in 0..8 {
            let mut hd = h.clone();
            for a in 0..np {
                hd[a * np + a] += lambda * (h[a * np + a] + 1e-9);
            }
            let mut s = g.clone();
            if !solve_spd(&hd, &mut s, np) {
                lambda *= 10.0;
                continue;
            }
            let vn: Vec<f64> = v.iter().zip(&s).map(|(a, b)| a + b).collect();
            let en = resid(&vn);
            let cn = cost(&en);
            if cn < c0 {
                v = vn;
                e0 = en;
                c0 = cn;
                lambda = (lambda * 0.3).max(1e-9);
                improved = true;
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    unpack(&v)
}
