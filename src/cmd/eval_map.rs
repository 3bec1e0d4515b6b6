//! `rfloc eval-map MODEL --truth DATASET`: compares the learned map (receivers and virtual
//! anchors) with the true receivers and their first-order mirror images in the hall's walls,
//! floor and ceiling, after the best rigid fit (reflection allowed) of the learned receivers and
//! of the model's positions of the dataset's frames onto the truth.
//!
//! The true mirror images are generated from the hall's bounding box (`meta.json` notes carry
//! no geometry, so the box is the truth positions' and receivers' extent unless
//! `--hall X,Y,Z` gives the hall size with one corner at the origin).

use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_csi::dataset::Dataset;
use rfloc_learn::align::fit_isometry;
use rfloc_learn::geometry::dist;
use rfloc_learn::linalg::quantile;
use rfloc_learn::Model;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model directory.
    pub model: PathBuf,
    /// Dataset with ground truth (receiver positions in meta.json, positions.npy).
    #[arg(long)]
    pub truth: PathBuf,
    /// Hall size `X,Y,Z` (m), corner at the origin: the walls the mirror images are taken in.
    #[arg(long, value_delimiter = ',')]
    pub hall: Option<Vec<f64>>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let model =
        Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let ds =
        Dataset::read(&args.truth).with_context(|| format!("reading {}", args.truth.display()))?;
    let Some(rx_true) = ds.meta.receiver_positions() else {
        bail!(
            "{}: meta.json has no receiver positions",
            args.truth.display()
        );
    };
    if rx_true.len() != model.meta.receivers.len() {
        bail!(
            "model has {} receivers, dataset {}",
            model.meta.receivers.len(),
            rx_true.len()
        );
    }
    let truth = ds
        .truth
        .positions
        .as_ref()
        .context("dataset has no positions.npy")?;
    let located = model.locate(&ds.blind(), true).context("locating")?;
    let dims = model.meta.dims;
    // Tag plane height (2D models put the tag plane at z = 0).
    let tag_z = quantile(&truth.column(2).to_vec(), 0.5);
    let mut a = Vec::new();
    let mut b = Vec::new();
    let step = (located.len() / 2000).max(1);
    for (i, l) in located.iter().enumerate().step_by(step) {
        a.push(l.position);
        b.push([
            truth[[i, 0]],
            truth[[i, 1]],
            if dims == 2 { 0.0 } else { truth[[i, 2]] },
        ]);
    }
    // Receivers count as much as all positions together.
    let wpos = 1.0;
    let wrx = a.len() as f64 / rx_true.len() as f64;
    let mut w = vec![wpos; a.len()];
    for (r, rx) in model.meta.receivers.iter().enumerate() {
        let p = rx.anchors[0].position;
        // in 2D the learned height's sign is free: compare |height| in the tag-plane frame
        a.push(if dims == 2 { [p[0], p[1], 0.0] } else { p });
        b.push(if dims == 2 {
            [rx_true[r][0], rx_true[r][1], 0.0]
        } else {
            rx_true[r]
        });
        w.push(wrx);
    }
    let iso = fit_isometry(&a, &b, &w, true);
    let hall = match &args.hall {
        Some(h) if h.len() != 3 => bail!("--hall needs three sizes X,Y,Z, got {}", h.len()),
        Some(h) => [[0.0, 0.0, 0.0], [h[0], h[1], h[2]]],
        None => {
            let mut lo = [f64::INFINITY; 3];
            let mut hi = [f64::NEG_INFINITY; 3];
            for p in rx_true.iter() {
                for k in 0..3 {
                    lo[k] = lo[k].min(p[k]);
                    hi[k] = hi[k].max(p[k]);
                }
            }
            lo[2] = 0.0;
            [lo, hi]
        }
    };
    println!("receiver  xy_err_m  height_err_m  offset_m  anchors");
    let mut rx_err = Vec::new();
    let mut anchor_err = Vec::new();
    for (r, rx) in model.meta.receivers.iter().enumerate() {
        let t = rx_true[r];
        let to_site = |p: [f64; 3]| -> [f64; 3] {
            let q = iso.apply(&[p[0], p[1], 0.0]);
            let z = if dims == 2 {
                tag_z + p[2].abs()
            } else {
                iso.apply(&p)[2]
            };
            [q[0], q[1], z]
        };
        let p = to_site(rx.anchors[0].position);
        let exy = ((p[0] - t[0]).powi(2) + (p[1] - t[1]).powi(2)).sqrt();
        rx_err.push(dist(&p, &t));
        println!(
            "{:<9} {:>8.3} {:>13.3} {:>9.3} {:>8}",
            rx.id,
            exy,
            (p[2] - t[2]).abs(),
            rx.offset_m,
            rx.anchors.len()
        );
        // first-order images of the true receiver in the six faces of the hall box
        let mut images = Vec::new();
        for k in 0..3 {
            let mut lo = t;
            lo[k] = 2.0 * hall[0][k] - t[k];
            let mut hi = t;
            hi[k] = 2.0 * hall[1][k] - t[k];
            images.push(lo);
            images.push(hi);
        }
        for an in rx.anchors.iter().skip(1) {
            let q = to_site(an.position);
            let e = images
                .iter()
                .map(|im| dist(&q, im))
                .fold(f64::INFINITY, f64::min);
            anchor_err.push(e);
            println!(
                "  anchor ({:7.2},{:7.2},{:6.2}) support {:>5}  nearest first-order image {:.3} m",
                q[0], q[1], q[2], an.support, e
            );
        }
    }
    println!(
        "receivers: median 3D error {:.3} m, max {:.3} m",
        quantile(&rx_err, 0.5),
        quantile(&rx_err, 1.0)
    );
    if !anchor_err.is_empty() {
        println!(
            "mirror anchors: {} found, median distance to the nearest first-order image {:.3} m",
            anchor_err.len(),
            quantile(&anchor_err, 0.5)
        );
    }
    Ok(())
}
