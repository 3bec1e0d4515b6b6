//! `rfloc crlb SCENARIO|DATASET --out FILE.csv`: the position error bound (PEB) per frame
//! (`frame,peb_m`) and its median and 95th percentile, from line of sight; optionally (scenarios
//! only) also from the visible reflections as if each were alone (`--reflections`), or from all
//! paths with their gains unknown, interfering where they overlap in delay (`--interfering`,
//! with the receivers' clocks unknown for unsynchronized receivers; `--map-unknown`: the map
//! learned from the same frames, `rfloc_channel::crlb_map`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use rfloc_channel::crlb::{median_p95, range_crlb_m};
use rfloc_channel::{
    peb_from_dataset, peb_per_frame, GainKnowledge, PebOptions, PebPaths, Unknowns,
};
use rfloc_csi::dataset::Dataset;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A scenario (TOML file or bundled name) or a dataset directory with ground truth.
    pub input: String,
    /// Output CSV `frame,peb_m` (inf where the links cannot fix the position).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the simulated frames (scenarios only).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of simulated frames (scenarios only).
    #[arg(long)]
    pub frames: Option<usize>,
    /// Also count visible reflections as ranges to virtual anchors (scenarios only).
    #[arg(long, conflicts_with = "interfering")]
    pub reflections: bool,
    /// All specular paths of a link in one model with unknown gains, and the dense multipath as
    /// coloured noise: paths that overlap in delay share their information (scenarios only).
    #[arg(long)]
    pub interfering: bool,
    /// With `--interfering`: the frames (true positions, times, tracks) of this dataset instead of
    /// the scenario's own walks, in the scenario's hall; the noise floor is the one the scenario
    /// sets on its own walks. For a recorded or ray-traced dataset of the same hall.
    #[arg(long, requires = "interfering")]
    pub at: Option<PathBuf>,
    /// With `--interfering`: each receiver's timing offset is unknown in every frame, as for
    /// unsynchronized receivers (the default when the frames' receivers are unsynchronized).
    #[arg(long, requires = "interfering")]
    pub unsynchronized: bool,
    /// With `--interfering`: the paths' amplitudes are known, only their phases unknown.
    #[arg(long, requires = "interfering")]
    pub known_amplitudes: bool,
    /// Also the bound after the product's smoother (`rfloc locate --track`): each frame's bound
    /// as its measurement σ, the walker's motion model, every track smoothed (a second CSV
    /// column `peb_tracked_m`). What tracking could reach if every frame met its bound.
    #[arg(long)]
    pub track: bool,
    /// With `--interfering`: the map unknown too. Every virtual anchor and receiver offset is a
    /// parameter shared by all frames, as for a model that learns the map from the frames it
    /// locates (`rfloc_channel::crlb_map`); positions are compared after one rigid fit over all
    /// frames, as `rfloc eval --align rigid` compares a learned model's. Adds the columns
    /// `peb_map_m` (and `peb_map_tracked_m` with `--track`): RMS errors over `--draws` draws.
    /// `anchors` (the default): every image source a free anchor. `walls`: the anchors tied
    /// together as the receivers mirrored in faces of known orientation, whose offsets are
    /// unknown (`ChannelModel::wall_structure`).
    #[arg(long, requires = "interfering", value_enum, num_args = 0..=1, default_missing_value = "anchors")]
    pub map_unknown: Option<MapModel>,
    /// Monte Carlo draws of the whole recording for `--map-unknown`.
    #[arg(long, default_value_t = 64, requires = "map_unknown", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub draws: u32,
    /// 2: height known (default); 3: full 3D bound.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub dims: u8,
}

/// How `--map-unknown` parametrizes the map.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapModel {
    /// Every image source a free anchor (3 coordinates each).
    Anchors,
    /// Receivers and face offsets, the images mirrored from them.
    Walls,
}

/// The frames a bound was computed on and the bound of each.
struct Bounds {
    label: String,
    offsets_hz: Vec<f64>,
    ds: Dataset,
    pebs: Vec<f64>,
    /// With `--map-unknown`.
    map: Option<crate::bound::SharedMapFigures>,
}

/// The line-of-sight bound from a dataset's own ground truth.
fn dataset_bounds(dir: &std::path::Path, args: &Args) -> anyhow::Result<Bounds> {
    if args.reflections || args.interfering {
        let flag = if args.reflections {
            "reflections"
        } else {
            "interfering"
        };
        bail!(
            "--{flag} needs a scenario: a dataset does not say which face a reflection came from \
             (for a dataset of a bundled hall: `rfloc crlb SCENARIO --interfering --at DATASET`)"
        );
    }
    let ds = Dataset::read(dir).with_context(|| format!("reading {}", dir.display()))?;
    let pebs = peb_from_dataset(&ds, args.dims as usize)
        .with_context(|| format!("bound for {}", dir.display()))?;
    Ok(Bounds {
        label: ds.meta.name.clone(),
        offsets_hz: ds.meta.subcarrier_offsets_hz.clone(),
        ds,
        pebs,
        map: None,
    })
}

/// A scenario's bound on its own simulated walks, or (`--at`) on a dataset's frames.
fn scenario_bounds(args: &Args) -> anyhow::Result<Bounds> {
    let dims = args.dims as usize;
    let scenario = super::simulate::load_scenario(&args.input)?;
    let offsets_hz = scenario.plan.offsets_hz().to_vec();
    if !args.interfering {
        let paths = if args.reflections {
            PebPaths::Resolvable
        } else {
            PebPaths::LineOfSight
        };
        let (ds, pebs) = peb_per_frame(
            &scenario,
            args.seed,
            args.frames,
            PebOptions { paths, dims },
        )
        .with_context(|| format!("bound for {}", scenario.name))?;
        return Ok(Bounds {
            label: scenario.name.clone(),
            offsets_hz,
            ds,
            pebs,
            map: None,
        });
    }
    // the same bound as peb_per_frame's, on every core
    let sim = rfloc_channel::simulate(&scenario, args.seed, args.frames)
        .with_context(|| format!("simulating {}", scenario.name))?;
    let noise_var = crate::bound::simulated_noise_variance(&sim)?;
    let dense = if scenario.diffuse.paths > 0 {
        format!(
            ", dense multipath {} dB from the first arrival, decay {} ns",
            scenario.diffuse.power_db,
            scenario.diffuse.decay_s * 1e9
        )
    } else {
        ", no dense multipath".to_string()
    };
    let (label, ds) = match &args.at {
        Some(at) => {
            let ds = Dataset::read(at).with_context(|| format!("reading {}", at.display()))?;
            check_same_receivers(&ds, &scenario)
                .with_context(|| format!("--at {}", at.display()))?;
            (
                format!("{} in {}'s hall{dense}", ds.meta.name, scenario.name),
                ds,
            )
        }
        None => (format!("{}{dense}", scenario.name), sim),
    };
    let unknowns = Unknowns {
        gains: if args.known_amplitudes {
            GainKnowledge::PhaseUnknown
        } else {
            GainKnowledge::Unknown
        },
        // the frames' own receivers decide, unless asked
        clock_offset: args.unsynchronized || !ds.meta.synchronized,
    };
    let label = if unknowns.clock_offset {
        format!("{label}, receiver clocks unknown in every frame")
    } else {
        label
    };
    let frames: Vec<usize> = (0..ds.n_frames()).collect();
    let positions = crate::bound::true_positions(&ds, &frames)?;
    if let Some(map_model) = args.map_unknown {
        let ids = ds.track_ids.as_ref().map(|t| t.to_vec());
        let map = crate::bound::shared_map_bounds(
            &scenario,
            &positions,
            &ds.timestamps.to_vec(),
            ids.as_deref(),
            noise_var,
            dims,
            unknowns,
            map_model == MapModel::Walls,
            args.draws as usize,
            args.seed,
            args.track,
        )?;
        return Ok(Bounds {
            label,
            offsets_hz,
            ds,
            pebs: map.known.clone(),
            map: Some(map),
        });
    }
    let pebs = crate::bound::interfering_bounds(&scenario, &positions, noise_var, dims, unknowns);
    Ok(Bounds {
        label,
        offsets_hz,
        ds,
        pebs,
        map: None,
    })
}

/// A dataset's frames belong in a scenario's hall only if its receivers are the scenario's (where
/// the dataset names them): same number, each within 0.5 m.
fn check_same_receivers(ds: &Dataset, scenario: &rfloc_channel::Scenario) -> anyhow::Result<()> {
    let Some(rx) = ds.meta.receiver_positions() else {
        return Ok(());
    };
    let sc = &scenario.scene.receivers;
    if rx.len() != sc.len() {
        bail!(
            "the dataset has {} receivers and scenario {} has {}: not the same hall",
            rx.len(),
            scenario.name,
            sc.len()
        );
    }
    for (i, (a, b)) in rx.iter().zip(sc).enumerate() {
        let d = ((a[0] - b.position[0]).powi(2)
            + (a[1] - b.position[1]).powi(2)
            + (a[2] - b.position[2]).powi(2))
        .sqrt();
        if d > 0.5 {
            bail!(
                "receiver {i} is {d:.2} m from scenario {}'s receiver {}: not the same hall",
                scenario.name,
                b.id
            );
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = std::path::Path::new(&args.input);
    let dims = args.dims as usize;
    let Bounds {
        label,
        offsets_hz: offsets,
        ds,
        pebs,
        map,
    } = if dir.is_dir() && dir.join("meta.json").exists() {
        dataset_bounds(dir, &args)?
    } else {
        scenario_bounds(&args)?
    };
    let tracked = if args.track {
        let frames: Vec<usize> = (0..pebs.len()).collect();
        Some(crate::bound::tracked_bound(&ds, &frames, &pebs, dims)?)
    } else {
        None
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let mut header = vec!["frame", "peb_m"];
    if tracked.is_some() {
        header.push("peb_tracked_m");
    }
    if let Some(m) = &map {
        header.push("peb_map_m");
        if m.tracked.is_some() {
            header.push("peb_map_tracked_m");
        }
    }
    writeln!(w, "{}", header.join(","))?;
    for (i, p) in pebs.iter().enumerate() {
        write!(w, "{i},{p}")?;
        if let Some(t) = &tracked {
            write!(w, ",{}", t[i])?;
        }
        if let Some(m) = &map {
            write!(w, ",{}", m.per_frame[i])?;
            if let Some(t) = &m.tracked {
                write!(w, ",{}", t[i])?;
            }
        }
        writeln!(w)?;
    }
    w.flush()
        .with_context(|| format!("writing {}", args.out.display()))?;
    let Some((median, p95)) = median_p95(&pebs) else {
        bail!("no frames");
    };
    let finite = pebs.iter().filter(|p| p.is_finite()).count();
    // writeln! instead of println!: a closed pipe (`| head`) is an error, not a panic
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{label}: PEB ({dims}D, {}) median {:.4} m, 95th percentile {:.4} m over {} frames ({} with a finite bound)",
        if args.known_amplitudes {
            "all paths interfering, amplitudes known, phases unknown"
        } else if args.interfering {
            "all paths interfering, gains unknown"
        } else if args.reflections {
            "LoS + reflections, each alone"
        } else {
            "line of sight"
        },
        median,
        p95,
        pebs.len(),
        finite
    )?;
    use crate::bound::efficient_quantile as eq;
    writeln!(
        stdout,
        "an efficient estimator: CEP50 {:.4} m, CE95 {:.4} m",
        eq(&pebs, 0.5),
        eq(&pebs, 0.95)
    )?;
    if let Some(t) = &tracked {
        if let Some((m, p)) = median_p95(t) {
            writeln!(
                stdout,
                "after the smoother (walker model, q = {} m²/s³): median {m:.4} m, 95th percentile {p:.4} m; an efficient estimator: CEP50 {:.4} m, CE95 {:.4} m",
                rfloc_anchor::track::WALKING_ACCEL_PSD,
                eq(t, 0.5),
                eq(t, 0.95)
            )?;
        }
    }
    if let Some(m) = &map {
        writeln!(
            stdout,
            "with the map unknown too ({} virtual anchors and the receivers' offsets{}, {} map \
             parameters shared by all {} frames; {} rigid motions removed by one fit over all \
             frames, {} other null directions; {} draws): an efficient estimator: CEP50 {:.4} m, \
             CE95 {:.4} m",
            m.anchors_modelled,
            if args.map_unknown == Some(MapModel::Walls) {
                ", the anchors tied to the receivers and the faces' offsets"
            } else {
                ""
            },
            m.map_parameters,
            m.per_frame.len(),
            m.gauge,
            m.null_directions,
            m.draws,
            eq(&m.per_frame, 0.5),
            eq(&m.per_frame, 0.95)
        )?;
        let rx: Vec<String> = m
            .receivers
            .iter()
            .map(|r| format!("{:.3} / {:.3}", r[0], r[1]))
            .collect();
        writeln!(
            stdout,
            "with the map unknown too, the receivers' RMS horizontal / vertical error after the fit (m): {}",
            rx.join(", ")
        )?;
        if let (Some(t), Some(tk)) = (&m.tracked, &m.tracked_known) {
            writeln!(
                stdout,
                "with the map unknown too, after the smoother: an efficient estimator: CEP50 {:.4} m, CE95 {:.4} m (the known map through the same draws and smoother: CEP50 {:.4} m, CE95 {:.4} m)",
                eq(t, 0.5),
                eq(t, 0.95),
                eq(tk, 0.5),
                eq(tk, 0.95)
            )?;
        }
    }
    writeln!(
        stdout,
        "single-path range bound at 25 dB per subcarrier on this tone plan: {:.4} m",
        range_crlb_m(&offsets, 10f64.powf(2.5))
    )?;
    writeln!(stdout, "wrote {}", args.out.display())?;
    Ok(())
}
