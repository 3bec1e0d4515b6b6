//! Scenarios: a scene, a radio (tone plan, synchronisation), noise, impairments, dense multipath
//! and motion, read from TOML text. Parsing takes a `&str`; reading files is the caller's job.
//!
//! Schema (see `scenarios/*.toml` for complete examples; unknown keys are errors, to catch typos):
//! ```toml
//! name = "factory-hall"
//! description = "..."
//! [materials]            # fixed loss per bounce (dB), or physical: Fresnel coefficients
//! drywall = 9.0
//! concrete = { itu = "concrete" }        # ITU-R P.2040 (metal = perfect conductor)
//! coated = { permittivity = [4.0, -0.3] }
//! [hall]                 # box [0, size_m]
//! size_m = [30.0, 20.0, 8.0]
//! walls = "concrete"; floor = "concrete"; ceiling = "metal"
//! [[obstacles]]          # axis-aligned boxes
//! name = "rack-1"; kind = "rack"; min = [2.0, 13.0, 0.0]; max = [9.0, 14.0, 4.0]; material = "metal"
//! [[receivers]]
//! id = "rx0"; position = [0.3, 0.3, 5.0]; antenna_offsets = [[0.0, 0.0, 0.0]]
//! [radio]
//! carrier_hz = 5.2e9; plan = "wifi80"   # wifi20|wifi40|wifi80|wifi160|nr|custom
//! synchronized = true; max_order = 2; truth_paths = 24
//! [noise]
//! snr_db_per_subcarrier = 25.0; reference = "median"   # or "distance" + reference_distance_m
//! enabled = true         # false: noiseless
//! [impairments]          # receiver_* always; per-frame ones only when synchronized = false
//! receiver_delay_max_s = 40e-9; timing_offset_max_s = 150e-9; agc_db = 3.0
//! [diffuse]
//! paths = 20; power_db = -15.0; decay_s = 20e-9
//! [motion]
//! kind = "walks"         # walks|grid|points
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::ChannelError;
use crate::geometry::{BoxObstacle, HallMaterials, Material, Receiver, Scene};
use crate::motion::{GridMotion, Motion, Walks};
use crate::ofdm::TonePlan;

/// Which link's SNR the noise floor is calibrated to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseReference {
    /// The median over all links (frame × receiver × antenna) of the mean per-subcarrier SNR
    /// equals the target (as in the shared ray-traced datasets).
    Median,
    /// A free-space line-of-sight link of this length (metres) has the target SNR.
    Distance(f64),
}

/// One noise floor for the whole dataset: `σ²` per subcarrier (complex, `CN(0, σ²)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseSpec {
    /// Target SNR per subcarrier at the reference, dB. `None`: noiseless.
    pub snr_db_per_subcarrier: Option<f64>,
    pub reference: NoiseReference,
}

/// Hardware impairments. The per-receiver ones apply always; the per-frame ones only in commodity
/// mode (`synchronized = false`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Impairments {
    /// Fixed delay per receiver, uniform in `[0, max]`, s.
    pub receiver_delay_max_s: f64,
    /// Fixed random phase per receiver.
    pub receiver_phase: bool,
    /// Per-frame timing offset, uniform in `[0, max]`, s.
    pub timing_offset_max_s: f64,
    /// Per-frame AGC gain error, uniform in `[−agc_db, agc_db]` dB.
    pub agc_db: f64,
}

/// Dense multipath after the first arrival: `paths` weak paths with delays `τ_0 + Exp(decay_s)`
/// and complex Gaussian gains, total power `power_db` relative to the link's specular power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diffuse {
    pub paths: usize,
    pub power_db: f64,
    pub decay_s: f64,
}

/// A complete, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub scene: Scene,
    pub plan: TonePlan,
    pub synchronized: bool,
    /// Highest reflection order of the image-source method.
    pub max_order: usize,
    /// Paths per link written as ground truth (earliest first).
    pub truth_paths: usize,
    pub noise: NoiseSpec,
    pub impairments: Impairments,
    pub diffuse: Diffuse,
    pub motion: Motion,
}

/// The scenarios shipped with rfloc (`scenarios/*.toml`), embedded so that binaries and tests
/// work from any directory.
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "factory-hall",
        include_str!("../../../scenarios/factory-hall.toml"),
    ),
    (
        "single-receiver",
        include_str!("../../../scenarios/single-receiver.toml"),
    ),
    (
        "warehouse-nlos",
        include_str!("../../../scenarios/warehouse-nlos.toml"),
    ),
    ("office", include_str!("../../../scenarios/office.toml")),
    (
        "factory-a",
        include_str!("../../../scenarios/factory-a.toml"),
    ),
];

/// TOML text of a bundled scenario.
pub fn bundled(name: &str) -> Option<&'static str> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    materials: BTreeMap<String, RawMaterial>,
    hall: RawHall,
    #[serde(default)]
    obstacles: Vec<RawObstacle>,
    receivers: Vec<RawReceiver>,
    radio: RawRadio,
    #[serde(default)]
    noise: RawNoise,
    #[serde(default)]
    impairments: RawImpairments,
    #[serde(default)]
    diffuse: RawDiffuse,
    motion: RawMotion,
}

/// `name = 7.0` (fixed loss, dB), `name = { itu = "concrete" }` (ITU-R P.2040 material, `metal` =
/// perfect conductor) or `name = { permittivity = [5.24, -0.58] }` (relative, complex).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawMaterial {
    LossDb(f64),
    Spec(RawMaterialSpec),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaterialSpec {
    #[serde(default)]
    itu: Option<String>,
    #[serde(default)]
    permittivity: Option<[f64; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHall {
    size_m: [f64; 3],
    walls: String,
    floor: String,
    ceiling: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObstacle {
    name: String,
    #[serde(default)]
    kind: String,
    min: [f64; 3],
    max: [f64; 3],
    material: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReceiver {
    id: String,
    position: [f64; 3],
    #[serde(default)]
    antenna_offsets: Option<Vec<[f64; 3]>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRadio {
    carrier_hz: f64,
    plan: String,
    #[serde(default)]
    scs_hz: Option<f64>,
    #[serde(default)]
    n_prb: Option<usize>,
    #[serde(default)]
    offsets_hz: Option<Vec<f64>>,
    synchronized: bool,
    #[serde(default = "default_order")]
    max_order: usize,
    #[serde(default = "default_truth_paths")]
    truth_paths: usize,
}
fn default_order() -> usize {
    2
}
fn default_truth_paths() -> usize {
    24
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNoise {
    /// `false`: no noise at all (for exact checks).
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_snr")]
    snr_db_per_subcarrier: Option<f64>,
    #[serde(default = "default_reference")]
    reference: String,
    #[serde(default)]
    reference_distance_m: Option<f64>,
}
fn default_true() -> bool {
    true
}
fn default_snr() -> Option<f64> {
    Some(25.0)
}
fn default_reference() -> String {
    "median".into()
}
impl Default for RawNoise {
    fn default() -> Self {
        RawNoise {
            enabled: true,
            snr_db_per_subcarrier: default_snr(),
            reference: default_reference(),
            reference_distance_m: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawImpairments {
    receiver_delay_max_s: f64,
    receiver_phase: bool,
    timing_offset_max_s: f64,
    agc_db: f64,
}
impl Default for RawImpairments {
    fn default() -> Self {
        RawImpairments {
            receiver_delay_max_s: 40e-9,
            receiver_phase: true,
            timing_offset_max_s: 150e-9,
            agc_db: 3.0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDiffuse {
    paths: usize,
    power_db: f64,
    decay_s: f64,
}
impl Default for RawDiffuse {
    fn default() -> Self {
        RawDiffuse {
            paths: 20,
            power_db: -15.0,
            decay_s: 20e-9,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMotion {
    kind: String,
    #[serde(default = "default_rate")]
    rate_hz: f64,
    #[serde(default = "default_height")]
    height_m: f64,
    // walks
    #[serde(default)]
    tracks: Option<usize>,
    #[serde(default)]
    track_duration_s: Option<f64>,
    #[serde(default)]
    speed_mps: Option<[f64; 2]>,
    #[serde(default)]
    stop_probability: Option<f64>,
    #[serde(default)]
    stop_s: Option<[f64; 2]>,
    #[serde(default)]
    height_variation_m: Option<f64>,
    #[serde(default)]
    height_period_s: Option<f64>,
    #[serde(default)]
    waypoints: Option<Vec<[f64; 2]>>,
    #[serde(default)]
    aisles: Option<Vec<[usize; 2]>>,
    // grid
    #[serde(default)]
    spacing_m: Option<f64>,
    #[serde(default)]
    margin_m: Option<f64>,
    #[serde(default)]
    clearance_m: Option<f64>,
    // points
    #[serde(default)]
    points: Option<Vec<[f64; 3]>>,
}
fn default_rate() -> f64 {
    10.0
}
fn default_height() -> f64 {
    1.2
}

fn finite(field: &str, v: &[f64]) -> Result<(), ChannelError> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(ChannelError::invalid(field, "must be finite"))
    }
}

fn positive(field: &str, v: f64) -> Result<(), ChannelError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(ChannelError::invalid(
            field,
            format!("must be positive, got {v}"),
        ))
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl Scenario {
    /// Walls and obstacle footprints for floor maps (see [`Scene::floor_outline`]).
    pub fn floor_outline(&self) -> crate::geometry::FloorOutline {
        self.scene.floor_outline()
    }

    /// Receiver reference positions, in the order of the dataset's receiver axis.
    pub fn receiver_positions(&self) -> Vec<[f64; 3]> {
        self.scene.receivers.iter().map(|r| r.position).collect()
    }

    /// Parses and validates a scenario from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Scenario, ChannelError> {
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ChannelError::Toml {
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        Scenario::from_raw(raw)
    }

    fn from_raw(raw: Raw) -> Result<Scenario, ChannelError> {
        let carrier = raw.radio.carrier_hz;
        positive("radio.carrier_hz", carrier)?;
        let material = |field: &str, name: &str| -> Result<Material, ChannelError> {
            match raw.materials.get(name) {
                Some(RawMaterial::LossDb(l)) if l.is_finite() && *l >= 0.0 => {
                    Ok(Material::loss_db(name, *l))
                }
                Some(RawMaterial::LossDb(l)) => Err(ChannelError::invalid(
                    format!("materials.{name}"),
                    format!("loss {l} dB (need ≥ 0)"),
                )),
                Some(RawMaterial::Spec(RawMaterialSpec {
                    itu: Some(kind),
                    permittivity: None,
                })) => Material::itu(name, kind, carrier).ok_or_else(|| {
                    let known: Vec<&str> = crate::geometry::ITU_MATERIALS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect();
                    ChannelError::invalid(
                        format!("materials.{name}"),
                        format!(
                            "unknown ITU material `{kind}` (metal, {})",
                            known.join(", ")
                        ),
                    )
                }),
                Some(RawMaterial::Spec(RawMaterialSpec {
                    itu: None,
                    permittivity: Some([re, im]),
                })) if re.is_finite() && im.is_finite() && *re > 0.0 => Ok(Material::dielectric(
                    name,
                    num_complex::Complex64::new(*re, *im),
                )),
                Some(RawMaterial::Spec(_)) => Err(ChannelError::invalid(
                    format!("materials.{name}"),
                    "give exactly one of `itu = \"...\"` or `permittivity = [re, im]` (re > 0)",
                )),
                None => Err(ChannelError::invalid(
                    field,
                    format!("unknown material `{name}` (define it under [materials])"),
                )),
            }
        };
        let size = raw.hall.size_m;
        finite("hall.size_m", &size)?;
        for (i, s) in size.iter().enumerate() {
            positive(&format!("hall.size_m[{i}]"), *s)?;
        }
        let hall = HallMaterials {
            walls: material("hall.walls", &raw.hall.walls)?,
            floor: material("hall.floor", &raw.hall.floor)?,
            ceiling: material("hall.ceiling", &raw.hall.ceiling)?,
        };
        let mut obstacles = Vec::new();
        for (i, o) in raw.obstacles.iter().enumerate() {
            let field = format!("obstacles[{i}] ({})", o.name);
            finite(&field, &o.min)?;
            finite(&field, &o.max)?;
            if (0..3).any(|k| o.max[k] <= o.min[k]) {
                return Err(ChannelError::invalid(
                    field,
                    "max must exceed min on every axis",
                ));
            }
            if (0..3).any(|k| o.min[k] < 0.0 || o.max[k] > size[k]) {
                return Err(ChannelError::invalid(field, "box reaches outside the hall"));
            }
            obstacles.push(BoxObstacle {
                name: o.name.clone(),
                kind: o.kind.clone(),
                min: o.min,
                max: o.max,
                material: material(&format!("{field}.material"), &o.material)?,
            });
        }
        if raw.receivers.is_empty() {
            return Err(ChannelError::invalid(
                "receivers",
                "at least one receiver is needed",
            ));
        }
        let mut receivers = Vec::new();
        for (i, r) in raw.receivers.iter().enumerate() {
            let offsets = r.antenna_offsets.clone().unwrap_or_else(|| vec![[0.0; 3]]);
            if offsets.is_empty() {
                return Err(ChannelError::invalid(
                    format!("receivers[{i}] ({})", r.id),
                    "antenna_offsets is empty",
                ));
            }
            receivers.push(Receiver {
                id: r.id.clone(),
                position: r.position,
                antenna_offsets: offsets,
            });
        }
        let scene = Scene::new(size, &hall, obstacles, receivers);
        for (i, r) in scene.receivers.iter().enumerate() {
            for a in 0..r.antenna_offsets.len() {
                let p = r.antenna_position(a);
                if !p.iter().all(|x| x.is_finite()) || !scene.is_free(p) {
                    return Err(ChannelError::invalid(
                        format!("receivers[{i}] ({}) antenna {a}", r.id),
                        format!("position {p:?} is outside the hall or inside an obstacle"),
                    ));
                }
            }
        }

        let rr = &raw.radio;
        positive("radio.carrier_hz", rr.carrier_hz)?;
        let plan = match rr.plan.as_str() {
            "wifi20" => TonePlan::wifi(20, rr.carrier_hz)?,
            "wifi40" => TonePlan::wifi(40, rr.carrier_hz)?,
            "wifi80" => TonePlan::wifi(80, rr.carrier_hz)?,
            "wifi160" => TonePlan::wifi(160, rr.carrier_hz)?,
            "nr" => {
                let scs = rr.scs_hz.ok_or_else(|| {
                    ChannelError::invalid("radio.scs_hz", "needed for plan = \"nr\"")
                })?;
                let n = rr.n_prb.ok_or_else(|| {
                    ChannelError::invalid("radio.n_prb", "needed for plan = \"nr\"")
                })?;
                TonePlan::nr(rr.carrier_hz, scs, n)?
            }
            "custom" => {
                let o = rr.offsets_hz.clone().ok_or_else(|| {
                    ChannelError::invalid("radio.offsets_hz", "needed for plan = \"custom\"")
                })?;
                TonePlan::new(rr.carrier_hz, o)?
            }
            other => {
                return Err(ChannelError::invalid(
                    "radio.plan",
                    format!("unknown plan `{other}` (wifi20, wifi40, wifi80, wifi160, nr, custom)"),
                ))
            }
        };
        if rr.max_order > 4 {
            return Err(ChannelError::invalid(
                "radio.max_order",
                "at most 4 (the anchor count grows as faces^order)",
            ));
        }

        let reference = match raw.noise.reference.as_str() {
            "median" => NoiseReference::Median,
            "distance" => {
                let d = raw.noise.reference_distance_m.ok_or_else(|| {
                    ChannelError::invalid(
                        "noise.reference_distance_m",
                        "needed for reference = \"distance\"",
                    )
                })?;
                positive("noise.reference_distance_m", d)?;
                NoiseReference::Distance(d)
            }
            other => {
                return Err(ChannelError::invalid(
                    "noise.reference",
                    format!("`{other}`: use \"median\" or \"distance\""),
                ))
            }
        };
        if let Some(s) = raw.noise.snr_db_per_subcarrier {
            finite("noise.snr_db_per_subcarrier", &[s])?;
        }
        let im = &raw.impairments;
        finite(
            "impairments",
            &[im.receiver_delay_max_s, im.timing_offset_max_s, im.agc_db],
        )?;
        if im.receiver_delay_max_s < 0.0 || im.timing_offset_max_s < 0.0 || im.agc_db < 0.0 {
            return Err(ChannelError::invalid("impairments", "ranges must be ≥ 0"));
        }
        let d = &raw.diffuse;
        finite("diffuse.power_db", &[d.power_db])?;
        if d.paths > 0 {
            positive("diffuse.decay_s", d.decay_s)?;
        }

        let motion = motion(&raw.motion, &scene)?;

        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            scene,
            plan,
            synchronized: rr.synchronized,
            max_order: rr.max_order,
            truth_paths: rr.truth_paths.max(1),
            noise: NoiseSpec {
                snr_db_per_subcarrier: if raw.noise.enabled {
                    raw.noise.snr_db_per_subcarrier
                } else {
                    None
                },
                reference,
            },
            impairments: Impairments {
                receiver_delay_max_s: im.receiver_delay_max_s,
                receiver_phase: im.receiver_phase,
                timing_offset_max_s: im.timing_offset_max_s,
                agc_db: im.agc_db,
            },
            diffuse: Diffuse {
                paths: d.paths,
                power_db: d.power_db,
                decay_s: d.decay_s,
            },
            motion,
        })
    }
}

fn motion(m: &RawMotion, scene: &Scene) -> Result<Motion, ChannelError> {
    positive("motion.rate_hz", m.rate_hz)?;
    finite("motion.height_m", &[m.height_m])?;
    match m.kind.as_str() {
        "walks" => {
            let waypoints = m.waypoints.clone().ok_or_else(|| {
                ChannelError::invalid("motion.waypoints", "needed for kind = \"walks\"")
            })?;
            let aisles = m.aisles.clone().ok_or_else(|| {
                ChannelError::invalid("motion.aisles", "needed for kind = \"walks\"")
            })?;
            let w = Walks {
                rate_hz: m.rate_hz,
                tracks: m.tracks.unwrap_or(8),
                track_duration_s: m.track_duration_s.unwrap_or(60.0),
                speed_mps: m.speed_mps.unwrap_or([1.0, 1.5]),
                stop_probability: m.stop_probability.unwrap_or(0.3),
                stop_s: m.stop_s.unwrap_or([1.0, 3.0]),
                height_m: m.height_m,
                height_variation_m: m.height_variation_m.unwrap_or(0.0),
                height_period_s: m.height_period_s.unwrap_or(20.0),
                waypoints,
                aisles,
            };
            positive("motion.track_duration_s", w.track_duration_s)?;
            positive("motion.speed_mps[0]", w.speed_mps[0])?;
            positive("motion.height_period_s", w.height_period_s)?;
            if w.speed_mps[1] < w.speed_mps[0] || w.stop_s[1] < w.stop_s[0] || w.stop_s[0] < 0.0 {
                return Err(ChannelError::invalid(
                    "motion",
                    "ranges [lo, hi] need 0 ≤ lo ≤ hi",
                ));
            }
            if !(0.0..=1.0).contains(&w.stop_probability) {
                return Err(ChannelError::invalid(
                    "motion.stop_probability",
                    "must be in [0, 1]",
                ));
            }
            if w.aisles.is_empty() {
                return Err(ChannelError::invalid("motion.aisles", "at least one aisle"));
            }
            let lo = w.height_m - w.height_variation_m.abs();
            let hi = w.height_m + w.height_variation_m.abs();
            for (i, p) in w.waypoints.iter().enumerate() {
                finite(&format!("motion.waypoints[{i}]"), p)?;
                for h in [lo, hi] {
                    if !scene.is_free([p[0], p[1], h]) {
                        return Err(ChannelError::invalid(
                            format!("motion.waypoints[{i}]"),
                            format!(
                                "{p:?} at height {h} m is outside the hall or inside an obstacle"
                            ),
                        ));
                    }
                }
            }
            for (i, e) in w.aisles.iter().enumerate() {
                if e[0] >= w.waypoints.len() || e[1] >= w.waypoints.len() || e[0] == e[1] {
                    return Err(ChannelError::invalid(
                        format!("motion.aisles[{i}]"),
                        "bad waypoint index",
                    ));
                }
                let (a, b) = (w.waypoints[e[0]], w.waypoints[e[1]]);
                for h in [lo, hi] {
                    if scene.blocked([a[0], a[1], h], [b[0], b[1], h]) {
                        return Err(ChannelError::invalid(
                            format!("motion.aisles[{i}]"),
                            format!("aisle {a:?} → {b:?} passes through an obstacle"),
                        ));
                    }
                }
            }
            Ok(Motion::Walks(w))
        }
        "grid" => {
            let spacing = m.spacing_m.unwrap_or(0.5);
            positive("motion.spacing_m", spacing)?;
            let g = GridMotion {
                rate_hz: m.rate_hz,
                spacing_m: spacing,
                margin_m: m.margin_m.unwrap_or(spacing),
                clearance_m: m.clearance_m.unwrap_or(0.25),
                height_m: m.height_m,
            };
            finite("motion", &[g.margin_m, g.clearance_m])?;
            Ok(Motion::Grid(g))
        }
        "points" => {
            let points = m.points.clone().ok_or_else(|| {
                ChannelError::invalid("motion.points", "needed for kind = \"points\"")
            })?;
            for (i, p) in points.iter().enumerate() {
                if !p.iter().all(|x| x.is_finite()) || !scene.is_free(*p) {
                    return Err(ChannelError::invalid(
                        format!("motion.points[{i}]"),
                        "outside the hall or inside an obstacle",
                    ));
                }
            }
            Ok(Motion::Points {
                rate_hz: m.rate_hz,
                points,
            })
        }
        other => Err(ChannelError::invalid(
            "motion.kind",
            format!("`{other}`: use walks, grid or points"),
        )),
    }
}
