//! `rfloc plot cdf|map`: figures from positions CSVs (`frame,x,y,z`, rfloc's output) and a
//! dataset's ground truth. Thin: errors come from `rfloc_anchor::evaluate` exactly as in
//! `rfloc eval` (same options), drawing from `rfloc_plot`. PNG or SVG by the `--out` extension.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rfloc_anchor::{evaluate, AlignMode, Dims, ErrorMode, EvalOptions};
use rfloc_channel::Scenario;
use rfloc_csi::dataset::{read_positions_csv, Dataset, PositionRow};
use rfloc_plot::{
    Bound, ErrorCdf, FloorMap, LabelledPoint, MethodErrors, Rect, Scene, Segment, Trajectory,
    TrajectoryKind,
};

use super::eval::{truth_positions, AlignArg, ErrorArg};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub figure: Figure,
}

#[derive(Debug, clap::Subcommand)]
pub enum Figure {
    /// Error CDF of one or more position files against the dataset's truth, CEP50/CE95 marked.
    Cdf(CdfArgs),
    /// Floor map: true trajectories, estimated positions, receivers (and a scenario's walls).
    Map(MapArgs),
}

/// Positions files and their names in the legend.
#[derive(Debug, clap::Args)]
pub struct Inputs {
    /// Positions CSV `frame,x,y,z[,…]`; repeat for several methods.
    #[arg(long = "positions", required = true)]
    pub positions: Vec<PathBuf>,
    /// Legend names, one per --positions (comma separated or repeated); default: file stems.
    #[arg(long = "labels-of-methods", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Dataset directory with ground truth (positions.npy).
    #[arg(long)]
    pub truth: PathBuf,
    /// Output image, .png or .svg.
    #[arg(long)]
    pub out: PathBuf,
    /// Figure title.
    #[arg(long)]
    pub title: Option<String>,
    /// Use only these track ids (comma separated), e.g. the held-out tracks.
    #[arg(long, value_delimiter = ',')]
    pub tracks: Option<Vec<i32>>,
}

#[derive(Debug, clap::Args)]
pub struct CdfArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[arg(long, value_enum, default_value_t = AlignArg::None)]
    pub align: AlignArg,
    /// Dimensions of the rigid fit for --align rigid.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
    #[arg(long, value_enum, default_value_t = ErrorArg::Horizontal)]
    pub error: ErrorArg,
    /// Draw a vertical line at this error (m), e.g. the median position error bound.
    #[arg(long)]
    pub bound_m: Option<f64>,
    #[arg(long, default_value = "median PEB")]
    pub bound_label: String,
    /// Logarithmic error axis.
    #[arg(long)]
    pub log_x: bool,
}

#[derive(Debug, clap::Args)]
pub struct MapArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    /// Scenario (bundled name or TOML file) whose walls, obstacles and receivers are drawn;
    /// without it, receivers come from the dataset's meta.json.
    #[arg(long)]
    pub scenario: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = match &args.figure {
        Figure::Cdf(a) => {
            rfloc_plot::error_cdf(&cdf_figure(a)?, &a.inputs.out)?;
            &a.inputs.out
        }
        Figure::Map(a) => {
            rfloc_plot::floor_map(&map_figure(a)?, &a.inputs.out)?;
            &a.inputs.out
        }
    };
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Legend names: given ones, else file stems; the counts must agree.
fn method_labels(inputs: &Inputs) -> anyhow::Result<Vec<String>> {
    if inputs.labels.is_empty() {
        return Ok(inputs
            .positions
            .iter()
            .map(|p| {
                p.file_stem().map_or_else(
                    || p.display().to_string(),
                    |s| s.to_string_lossy().into_owned(),
                )
            })
            .collect());
    }
    if inputs.labels.len() != inputs.positions.len() {
        bail!(
            "{} --labels-of-methods for {} --positions files",
            inputs.labels.len(),
            inputs.positions.len()
        );
    }
    Ok(inputs.labels.clone())
}

fn read_truth(dir: &Path) -> anyhow::Result<(Dataset, Vec<[f64; 3]>)> {
    let ds = Dataset::read(dir)?;
    let truth = truth_positions(&ds, dir)?;
    Ok((ds, truth))
}

/// The error CDF data: one method per positions file, errors as `rfloc eval` computes them.
pub fn cdf_figure(a: &CdfArgs) -> anyhow::Result<ErrorCdf> {
    let labels = method_labels(&a.inputs)?;
    let (ds, truth) = read_truth(&a.inputs.truth)?;
    let track_ids: Option<Vec<i32>> = ds.track_ids.as_ref().map(|t| t.to_vec());
    let opts = EvalOptions {
        align: match a.align {
            AlignArg::None => AlignMode::None,
            AlignArg::Rigid => AlignMode::Rigid(Dims::from_n(a.dims as usize)?),
        },
        error: match a.error {
            ErrorArg::Horizontal => ErrorMode::Horizontal,
            ErrorArg::Full3d => ErrorMode::Full3d,
        },
        tracks: a.inputs.tracks.clone(),
    };
    let mut methods = Vec::new();
    for (path, label) in a.inputs.positions.iter().zip(labels) {
        let rows = read_positions_csv(path)?;
        let frames: Vec<usize> = rows.iter().map(|r| r.frame).collect();
        let est: Vec<[f64; 3]> = rows.iter().map(|r| r.xyz).collect();
        let ev = evaluate(&frames, &est, None, &truth, track_ids.as_deref(), &opts).with_context(
            || {
                format!(
                    "evaluating {} against {}",
                    path.display(),
                    a.inputs.truth.display()
                )
            },
        )?;
        methods.push(MethodErrors {
            label,
            errors_m: ev.errors,
        });
    }
    Ok(ErrorCdf {
        title: a
            .inputs
            .title
            .clone()
            .unwrap_or_else(|| format!("Position error: {}", ds.meta.name)),
        methods,
        bounds: a
            .bound_m
            .map(|v| Bound {
                label: a.bound_label.clone(),
                value_m: v,
            })
            .into_iter()
            .collect(),
        log_x: a.log_x,
        ..Default::default()
    })
}

/// Estimated positions in frame order, broken (NaN) where the track changes or frames are
/// skipped (a line across a gap would draw a walk that never happened).
fn estimate_points(rows: &[PositionRow], ds: &Dataset, tracks: Option<&[i32]>) -> Vec<[f64; 2]> {
    let mut rows: Vec<&PositionRow> = rows
        .iter()
        .filter(|r| tracks.is_none_or(|t| t.contains(&ds.track_of(r.frame))))
        .collect();
    rows.sort_by_key(|r| r.frame);
    let mut out = Vec::with_capacity(rows.len());
    let mut last: Option<(usize, i32)> = None;
    for r in rows {
        let t = ds.track_of(r.frame);
        if last.is_some_and(|(f, lt)| lt != t || r.frame != f + 1) {
            out.push([f64::NAN, f64::NAN]);
        }
        last = Some((r.frame, t));
        out.push([r.xyz[0], r.xyz[1]]);
    }
    out
}

fn load_scenario(name_or_path: &str) -> anyhow::Result<Scenario> {
    let text = match rfloc_channel::bundled(name_or_path) {
        Some(t) => t.to_string(),
        None => std::fs::read_to_string(name_or_path).with_context(|| {
            format!("{name_or_path}: not a bundled scenario and not a readable file")
        })?,
    };
    Scenario::from_toml_str(&text).with_context(|| format!("scenario {name_or_path}"))
}

/// The floor map data: truth per track, each positions file as an estimate.
pub fn map_figure(a: &MapArgs) -> anyhow::Result<FloorMap> {
    let labels = method_labels(&a.inputs)?;
    let (ds, truth) = read_truth(&a.inputs.truth)?;
    let tracks = a.inputs.tracks.as_deref();
    let mut trajectories = Vec::new();
    let mut track_order: Vec<i32> = Vec::new();
    for f in 0..truth.len() {
        let t = ds.track_of(f);
        if tracks.is_some_and(|sel| !sel.contains(&t)) {
            continue;
        }
        let k = match track_order.iter().position(|&x| x == t) {
            Some(k) => k,
            None => {
                track_order.push(t);
                trajectories.push(Trajectory {
                    label: "True trajectory".into(),
                    kind: TrajectoryKind::Truth,
                    points: Vec::new(),
                });
                trajectories.len() - 1
            }
        };
        trajectories[k].points.push([truth[f][0], truth[f][1]]);
    }
    if trajectories.is_empty() {
        bail!(
            "{}: no frames in tracks {:?} (the dataset has tracks {:?})",
            a.inputs.truth.display(),
            tracks.unwrap_or(&[]),
            ds.tracks()
        );
    }
    for (path, label) in a.inputs.positions.iter().zip(labels) {
        let rows = read_positions_csv(path)?;
        if let Some(r) = rows.iter().find(|r| r.frame >= truth.len()) {
            bail!(
                "{}: frame {} is beyond the dataset's {} frames",
                path.display(),
                r.frame,
                truth.len()
            );
        }
        trajectories.push(Trajectory {
            label,
            kind: TrajectoryKind::Estimate,
            points: estimate_points(&rows, &ds, tracks),
        });
    }
    let (scene, receivers) = match &a.scenario {
        Some(s) => {
            let sc = load_scenario(s)?;
            let outline = sc.scene.floor_outline();
            let scene = Scene {
                walls: outline
                    .walls
                    .iter()
                    .map(|w| Segment::new(w[0], w[1]))
                    .collect(),
                obstacles: outline
                    .obstacles
                    .iter()
                    .map(|r| Rect::new(r.min, r.max))
                    .collect(),
            };
            let rx = sc
                .scene
                .receivers
                .iter()
                .map(|r| LabelledPoint::new(r.id.clone(), [r.position[0], r.position[1]]))
                .collect();
            (scene, rx)
        }
        None => {
            let rx = ds
                .meta
                .receivers
                .iter()
                .filter_map(|r| {
                    r.position
                        .map(|p| LabelledPoint::new(r.id.clone(), [p[0], p[1]]))
                })
                .collect();
            (Scene::default(), rx)
        }
    };
    Ok(FloorMap {
        title: a
            .inputs
            .title
            .clone()
            .unwrap_or_else(|| format!("Floor map: {}", ds.meta.name)),
        scene,
        receivers,
        trajectories,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfloc_csi::dataset::write_positions_csv;

    fn shared_dataset() -> Option<PathBuf> {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/datasets/factory-a-grid-sync");
        if p.join("meta.json").exists() {
            Some(p)
        } else {
            eprintln!("skipped: ../shared not found");
            None
        }
    }

    fn inputs(dir: &Path, positions: Vec<PathBuf>, labels: Vec<String>, out: PathBuf) -> Inputs {
        Inputs {
            positions,
            labels,
            truth: dir.to_path_buf(),
            out,
            title: None,
            tracks: None,
        }
    }

    #[test]
    fn cdf_errors_match_known_offsets_and_figures_render() {
        let Some(dir) = shared_dataset() else { return };
        let ds = Dataset::read(&dir).unwrap();
        let truth = truth_positions(&ds, &dir).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // Method A: 0.3 m east of the truth; method B: 0.4 m north, every third frame.
        let a: Vec<PositionRow> = truth
            .iter()
            .enumerate()
            .map(|(f, p)| PositionRow::new(f, [p[0] + 0.3, p[1], p[2]]))
            .collect();
        let b: Vec<PositionRow> = truth
            .iter()
            .enumerate()
            .step_by(3)
            .map(|(f, p)| PositionRow::new(f, [p[0], p[1] + 0.4, p[2]]))
            .collect();
        let (pa, pb) = (tmp.path().join("a.csv"), tmp.path().join("b.csv"));
        write_positions_csv(&pa, &a).unwrap();
        write_positions_csv(&pb, &b).unwrap();
        let out = tmp.path().join("cdf.png");
        let args = CdfArgs {
            inputs: inputs(
                &dir,
                vec![pa.clone(), pb.clone()],
                vec!["A".into(), "B".into()],
                out.clone(),
            ),
            align: AlignArg::None,
            dims: 2,
            error: ErrorArg::Horizontal,
            bound_m: Some(0.1),
            bound_label: "median PEB".into(),
            log_x: false,
        };
        let fig = cdf_figure(&args).unwrap();
        assert_eq!(fig.methods.len(), 2);
        assert_eq!(fig.methods[0].errors_m.len(), a.len());
        assert_eq!(fig.methods[1].errors_m.len(), b.len());
        assert!(fig.methods[0]
            .errors_m
            .iter()
            .all(|e| (e - 0.3).abs() < 1e-9));
        assert!(fig.methods[1]
            .errors_m
            .iter()
            .all(|e| (e - 0.4).abs() < 1e-9));
        run(Args {
            figure: Figure::Cdf(args),
        })
        .unwrap();
        assert!(std::fs::metadata(&out).unwrap().len() > 1000);

        let svg = tmp.path().join("map.svg");
        let margs = MapArgs {
            inputs: inputs(&dir, vec![pa], vec![], svg.clone()),
            scenario: Some("factory-a".into()),
        };
        let fig = map_figure(&margs).unwrap();
        assert!(fig
            .trajectories
            .iter()
            .any(|t| t.kind == TrajectoryKind::Truth));
        assert_eq!(fig.trajectories.last().unwrap().label, "a");
        run(Args {
            figure: Figure::Map(margs),
        })
        .unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("True trajectory") && text.contains("x [m]"));

        // Label count must match the positions count.
        let bad = CdfArgs {
            inputs: inputs(
                &dir,
                vec![pb],
                vec!["x".into(), "y".into()],
                tmp.path().join("x.png"),
            ),
            align: AlignArg::None,
            dims: 2,
            error: ErrorArg::Horizontal,
            bound_m: None,
            bound_label: String::new(),
            log_x: false,
        };
        assert!(cdf_figure(&bad)
            .unwrap_err()
            .to_string()
            .contains("2 --labels-of-methods for 1"));
    }
}
