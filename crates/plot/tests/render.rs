//! Renders every figure to PNG and SVG from synthetic data and checks the files: PNG decodes with
//! the requested size and is not blank, SVG holds the axis titles and legend text.
//!
//! Set RFLOC_PLOT_EXAMPLES=/some/dir to also keep a copy of each rendered figure there.

use std::f64::consts::PI;
use std::fs::File;
use std::path::{Path, PathBuf};

use rfloc_plot::*;

/// Small deterministic generator (xorshift64*) with Box-Muller normals: no dependency, fixed seed.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

fn hall() -> Scene {
    let (w, h) = (30.0, 20.0);
    Scene {
        walls: vec![
            Segment::new([0.0, 0.0], [w, 0.0]),
            Segment::new([w, 0.0], [w, h]),
            Segment::new([w, h], [0.0, h]),
            Segment::new([0.0, h], [0.0, 0.0]),
        ],
        obstacles: vec![
            Rect::new([6.0, 5.0], [10.0, 8.0]),
            Rect::new([18.0, 11.0], [24.0, 14.0]),
        ],
    }
}

fn receivers() -> Vec<LabelledPoint> {
    vec![
        LabelledPoint::new("rx0", [2.0, 2.0]),
        LabelledPoint::new("rx1", [28.0, 3.0]),
        LabelledPoint::new("rx2", [27.0, 18.0]),
        LabelledPoint::new("rx3", [3.0, 17.0]),
    ]
}

/// Mirror images of the receivers in the four outer walls (first-order virtual anchors).
fn virtual_anchors() -> Vec<[f64; 2]> {
    let mut v = Vec::new();
    for r in receivers() {
        let [x, y] = r.xy;
        v.extend([[-x, y], [60.0 - x, y], [x, -y], [x, 40.0 - y]]);
    }
    v
}

fn walk(n: usize) -> Vec<[f64; 2]> {
    (0..n)
        .map(|i| {
            let t = 2.0 * PI * i as f64 / n as f64;
            [
                15.0 + 11.0 * t.cos(),
                10.0 + 6.5 * (2.0 * t).sin().abs() * t.sin().signum(),
            ]
        })
        .collect()
}

fn noisy(points: &[[f64; 2]], sigma: f64, rng: &mut Rng) -> Vec<[f64; 2]> {
    points
        .iter()
        .map(|p| [p[0] + sigma * rng.normal(), p[1] + sigma * rng.normal()])
        .collect()
}

fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Renders `draw` to NAME.png and NAME.svg and checks both.
fn check(
    name: &str,
    size: FigureSize,
    svg_must_contain: &[&str],
    draw: impl Fn(&Path) -> Result<(), PlotError>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join(format!("{name}.png"));
    let svg = dir.path().join(format!("{name}.svg"));
    draw(&png).unwrap_or_else(|e| panic!("{name}.png: {e}"));
    draw(&svg).unwrap_or_else(|e| panic!("{name}.svg: {e}"));
    check_png(&png, size);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "{name}.svg is not SVG");
    for needle in svg_must_contain {
        assert!(text.contains(needle), "{name}.svg lacks {needle:?}");
    }
    if let Ok(keep) = std::env::var("RFLOC_PLOT_EXAMPLES") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&png, keep.join(format!("{name}.png"))).unwrap();
        std::fs::copy(&svg, keep.join(format!("{name}.svg"))).unwrap();
    }
    text
}

fn check_png(path: &Path, size: FigureSize) {
    let decoder = png::Decoder::new(File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(
        (info.width, info.height),
        (size.width, size.height),
        "{path:?}"
    );
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{path:?}: {:?}", info.color_type);
    let pixels = &buf[..info.buffer_size()];
    let lum: Vec<f64> = pixels
        .chunks(channels)
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .collect();
    let n = lum.len() as f64;
    let mean = lum.iter().sum::<f64>() / n;
    let var = lum.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    let inked = lum.iter().filter(|&&l| l < 200.0).count() as f64 / n;
    assert!(
        var > 50.0,
        "{path:?} looks blank (luminance variance {var:.1})"
    );
    assert!(
        inked > 0.01,
        "{path:?}: only {:.2} % of pixels are inked",
        100.0 * inked
    );
    // Colour, not just grey: some pixel has clearly different channels.
    let coloured = pixels
        .chunks(channels)
        .any(|p| (p[0] as i32 - p[2] as i32).abs() > 60);
    assert!(coloured, "{path:?} has no coloured pixel");
}

#[test]
fn floor_map_renders() {
    let mut rng = Rng(7);
    let truth = walk(200);
    let est = noisy(&truth, 0.4, &mut rng);
    let mut base = noisy(&truth, 1.5, &mut rng);
    base[50] = [f64::NAN, f64::NAN];
    let true_anchors = virtual_anchors();
    let learned = noisy(&true_anchors, 0.8, &mut rng);
    let map = FloorMap {
        title: "factory-hall: learned map".into(),
        scene: hall(),
        receivers: receivers(),
        true_anchors,
        learned_anchors: learned,
        link_anchors: true,
        trajectories: vec![
            Trajectory {
                label: "True trajectory".into(),
                kind: TrajectoryKind::Truth,
                points: truth.clone(),
            },
            Trajectory {
                label: "Autoencoder + 5 labels".into(),
                kind: TrajectoryKind::Estimate,
                points: est,
            },
            Trajectory {
                label: "Classical baseline".into(),
                kind: TrajectoryKind::Estimate,
                points: base,
            },
        ],
        points: [0, 40, 80, 120, 160]
            .iter()
            .enumerate()
            .map(|(k, &i)| LabelledPoint::new(format!("L{k}"), truth[i]))
            .collect(),
        ..Default::default()
    };
    let svg = check(
        "floor_map",
        map.size,
        &[
            "x [m]",
            "y [m]",
            "Receiver",
            "Learned virtual anchor",
            "Classical baseline",
            "rx2",
            "L4",
        ],
        |p| floor_map(&map, p),
    );
    // Every finite estimate is a dot (200 + 199), plus the labelled-point rings.
    let circles = svg.matches("<circle").count();
    assert!(
        circles >= 399 + 5,
        "only {circles} circles in the floor map SVG"
    );
}

fn methods() -> Vec<MethodErrors> {
    let mut rng = Rng(11);
    let mut method = |label: &str, sigma: f64| MethodErrors {
        label: label.into(),
        errors_m: (0..500)
            .map(|_| (sigma * rng.normal()).hypot(sigma * rng.normal()))
            .collect(),
    };
    vec![
        method("Autoencoder", 0.05),
        method("Autoencoder + tracking", 0.03),
        method("Classical baseline", 0.6),
    ]
}

#[test]
fn error_cdf_renders_linear_and_log() {
    let cdf = ErrorCdf {
        title: "Position error CDF".into(),
        methods: methods(),
        bounds: vec![Bound {
            label: "median PEB".into(),
            value_m: 0.02,
        }],
        ..Default::default()
    };
    let summary = ErrorSummary::of(&cdf.methods[0].errors_m).unwrap();
    let legend = format!("CEP50 {}", fmt3(summary.cep50));
    check(
        "error_cdf",
        cdf.size,
        &[
            "Position error [m]",
            "Cumulative probability",
            "Classical baseline",
            "median PEB",
            &legend,
        ],
        |p| error_cdf(&cdf, p),
    );
    let log = ErrorCdf {
        log_x: true,
        title: "Position error CDF (log scale)".into(),
        ..cdf.clone()
    };
    check(
        "error_cdf_log",
        log.size,
        &["Position error [m]", "Autoencoder"],
        |p| error_cdf(&log, p),
    );
}

/// Same 3-significant-digit format as the legend, for locating it in the SVG.
fn fmt3(v: f64) -> String {
    let d = (3 - v.abs().log10().ceil() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.d$}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[test]
fn error_heatmap_renders() {
    let mut rng = Rng(3);
    let positions: Vec<[f64; 2]> = (0..3000)
        .map(|_| [0.5 + 29.0 * rng.uniform(), 0.5 + 19.0 * rng.uniform()])
        .collect();
    // Error grows with distance from the hall centre: a pattern the map must show.
    let errors_m = positions
        .iter()
        .map(|p| 0.05 + 0.02 * dist(*p, [15.0, 10.0]) * (1.0 + 0.2 * rng.normal()).abs())
        .collect();
    let map = ErrorHeatmap {
        title: "Mean error per 1.5 m bin".into(),
        positions,
        errors_m,
        bin_m: 1.5,
        min_count: 3,
        scene: hall(),
        receivers: receivers(),
        ..Default::default()
    };
    check(
        "error_heatmap",
        map.size,
        &["x [m]", "Mean position error [m]", "rx0"],
        |p| error_heatmap(&map, p),
    );
}

#[test]
fn peb_map_renders() {
    // Toy bound: grows with the distance to the nearest receiver squared (free-space SNR loss).
    let x_m: Vec<f64> = (0..60).map(|i| 0.25 + 0.5 * i as f64).collect();
    let y_m: Vec<f64> = (0..40).map(|j| 0.25 + 0.5 * j as f64).collect();
    let rx = receivers();
    let mut peb_m = Vec::new();
    for &y in &y_m {
        for &x in &x_m {
            let inside = hall()
                .obstacles
                .iter()
                .any(|r| x > r.min[0] && x < r.max[0] && y > r.min[1] && y < r.max[1]);
            let d = rx
                .iter()
                .map(|r| dist(r.xy, [x, y]))
                .fold(f64::INFINITY, f64::min);
            peb_m.push(if inside {
                f64::NAN
            } else {
                0.002 * (1.0 + d * d)
            });
        }
    }
    let map = PebMap {
        title: "Position error bound".into(),
        x_m,
        y_m,
        peb_m,
        scene: hall(),
        receivers: rx,
        ..Default::default()
    };
    check(
        "peb_map",
        map.size,
        &["Position error bound [m]", "x [m]"],
        |p| peb_map(&map, p),
    );
    let linear = PebMap {
        log_scale: false,
        ..map.clone()
    };
    check("peb_map_linear", linear.size, &["y [m]"], |p| {
        peb_map(&linear, p)
    });
}

#[test]
fn training_curves_render() {
    let train: Vec<[f64; 2]> = (1..=60)
        .map(|e| [e as f64, 2.0 * (-(e as f64) / 12.0).exp() + 0.01])
        .collect();
    let val: Vec<[f64; 2]> = (1..=60)
        .map(|e| {
            [
                e as f64,
                2.2 * (-(e as f64) / 12.0).exp() + 0.015 + 0.0004 * e as f64,
            ]
        })
        .collect();
    let tc = TrainingCurves {
        title: "Unsupervised training".into(),
        curves: vec![
            Curve {
                label: "train".into(),
                points: train,
                ..Default::default()
            },
            Curve {
                label: "validation".into(),
                points: val,
                dashed: true,
                color: Some(1),
            },
        ],
        ..Default::default()
    };
    check(
        "training_curves",
        tc.size,
        &["Epoch", "Loss", "validation"],
        |p| training_curves(&tc, p),
    );
}

#[test]
fn label_efficiency_renders() {
    let series = |label: &str, scale: f64| EfficiencySeries {
        label: label.into(),
        points: [3.0, 4.0, 5.0, 7.0, 10.0]
            .iter()
            .map(|&n| {
                let v = scale / f64::sqrt(n);
                EfficiencyPoint {
                    n_labels: n,
                    value_m: v,
                    lo_m: 0.7 * v,
                    hi_m: 1.4 * v,
                }
            })
            .collect(),
    };
    let le = LabelEfficiency {
        title: "Label efficiency".into(),
        series: vec![
            series("without tracking", 0.3),
            series("with tracking", 0.18),
        ],
        ..Default::default()
    };
    check(
        "label_efficiency",
        le.size,
        &["Number of labelled points", "CEP50 [m]", "with tracking"],
        |p| label_efficiency(&le, p),
    );
    let log = LabelEfficiency {
        log_x: true,
        log_y: true,
        title: "Label efficiency (log-log)".into(),
        ..le.clone()
    };
    check(
        "label_efficiency_log",
        log.size,
        &["CEP50 [m]", "without tracking"],
        |p| label_efficiency(&log, p),
    );
}

#[test]
fn delay_profile_renders() {
    // Three paths through a sinc-shaped band-limited response (80 MHz), 1 ns grid.
    let paths = [(24e-9, 1.0), (41e-9, 0.3), (63e-9, 0.08)];
    let delays_s: Vec<f64> = (0..150).map(|i| i as f64 * 1e-9).collect();
    let power = delays_s
        .iter()
        .map(|&t| {
            let a: f64 = paths
                .iter()
                .map(|&(d, p): &(f64, f64)| {
                    let x = PI * 80e6 * (t - d);
                    let s = if x.abs() < 1e-9 { 1.0 } else { x.sin() / x };
                    p.sqrt() * s
                })
                .sum();
            a * a + 1e-5
        })
        .collect();
    let dp = DelayProfile {
        title: "Delay profile, rx1".into(),
        delays_s,
        power,
        estimated: vec![
            PathMarker {
                delay_s: 24.3e-9,
                power: 0.95,
            },
            PathMarker {
                delay_s: 40.6e-9,
                power: 0.33,
            },
            PathMarker {
                delay_s: 63.8e-9,
                power: 0.07,
            },
        ],
        truth: paths
            .iter()
            .map(|&(d, p)| PathMarker {
                delay_s: d,
                power: p,
            })
            .collect(),
        ..Default::default()
    };
    check(
        "delay_profile",
        dp.size,
        &[
            "Delay [ns]",
            "Power [dB rel. peak]",
            "Estimated paths",
            "True paths",
        ],
        |p| delay_profile(&dp, p),
    );
}

#[test]
fn unknown_extension_and_missing_directory_are_errors() {
    let cdf = ErrorCdf {
        methods: methods(),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        error_cdf(&cdf, &dir.path().join("cdf.jpg")),
        Err(PlotError::UnsupportedFormat { .. })
    ));
    let missing = dir.path().join("no/such/dir/cdf.png");
    let err = error_cdf(&cdf, &missing).unwrap_err();
    assert!(matches!(err, PlotError::Render { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    let missing_svg = dir.path().join("no/such/dir/cdf.svg");
    assert!(error_cdf(&cdf, &missing_svg).is_err());
}
