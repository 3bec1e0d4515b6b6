//! Scene geometry: a hall bounded by planar faces (walls, floor, ceiling) plus axis-aligned box
//! obstacles (machines, racks, pillars, conveyors), each with a material whose reflection loss is
//! given in dB, and receivers with antenna offsets.
//!
//! Equations (metres):
//! - a face is a planar rectangle `{ o + s·u + t·v : s, t ∈ [0, 1] }` with unit normal
//!   `n = (u × v) / |u × v|` pointing into the space from which it is lit (into the hall for walls,
//!   out of the box for obstacles);
//! - mirror image of a point `p` in the face's plane: `p' = p − 2 ((p − o)·n) n`;
//! - a segment `a → b` meets the plane at `t* = ((o − a)·n) / ((b − a)·n)`;
//! - a segment is blocked by a box when the slab intervals `[(min_i − a_i)/d_i, (max_i − a_i)/d_i]`
//!   of the three axes overlap inside the open segment (ray–box slab test), i.e. the segment passes
//!   through the box's interior, not merely touching its surface.
//! - reflection coefficients (ITU-R P.2040 form, incidence angle θ from the normal, relative
//!   complex permittivity `η = ε' − j σ/(ε₀ ω)`):
//!   `r_⊥ = (cos θ − √(η − sin²θ)) / (cos θ + √(η − sin²θ))`,
//!   `r_∥ = (η cos θ − √(η − sin²θ)) / (η cos θ + √(η − sin²θ))`; a perfect conductor has
//!   `r_⊥ = −1, r_∥ = +1`; a material given only by a loss `L` dB has `r_⊥ = −a, r_∥ = +a`,
//!   `a = 10^(−L/20)`.

use num_complex::Complex64;

/// Numerical tolerance in metres for "on the face" and "touches the surface" decisions.
pub const EPS_M: f64 = 1e-9;

pub(crate) fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}
pub(crate) fn add(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}
pub(crate) fn scale(a: [f64; 3], s: f64) -> [f64; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}
pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
/// Euclidean distance `|a − b|` in metres.
pub fn distance(a: [f64; 3], b: [f64; 3]) -> f64 {
    let d = sub(a, b);
    dot(d, d).sqrt()
}

/// How a face reflects (see the module doc for the coefficients).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reflection {
    /// A fixed loss in dB, independent of the angle (a scaled perfect conductor).
    LossDb(f64),
    /// A dielectric with relative complex permittivity `η = ε' − j σ/(ε₀ω)`: Fresnel coefficients.
    Dielectric(Complex64),
    /// A perfect electric conductor (metal).
    Conductor,
}

/// Vacuum permittivity, F/m.
const EPS0: f64 = 8.854_187_812_8e-12;

/// ITU-R P.2040 material parameters `ε' = a f^b`, `σ = c f^d` (f in GHz, σ in S/m), for the
/// materials of indoor scenes; `metal` is a perfect conductor.
pub const ITU_MATERIALS: &[(&str, [f64; 4])] = &[
    ("concrete", [5.24, 0.0, 0.0462, 0.7822]),
    ("brick", [3.91, 0.0, 0.0238, 0.16]),
    ("plasterboard", [2.73, 0.0, 0.0085, 0.9395]),
    ("wood", [1.99, 0.0, 0.0047, 1.0718]),
    ("glass", [6.31, 0.0, 0.0036, 1.3394]),
    ("ceiling_board", [1.48, 0.0, 0.0011, 1.0750]),
    ("floorboard", [3.66, 0.0, 0.0044, 1.3515]),
];

impl Reflection {
    /// `(r_⊥, r_∥)` for an incidence angle with cosine `cos_theta` (from the normal).
    pub fn coefficients(&self, cos_theta: f64) -> (Complex64, Complex64) {
        match *self {
            Reflection::LossDb(l) => {
                let a = 10f64.powf(-l / 20.0);
                (Complex64::new(-a, 0.0), Complex64::new(a, 0.0))
            }
            Reflection::Conductor => (Complex64::new(-1.0, 0.0), Complex64::new(1.0, 0.0)),
            Reflection::Dielectric(eta) => {
                let c = Complex64::new(cos_theta.abs().min(1.0), 0.0);
                let q = (eta - (1.0 - c.re * c.re)).sqrt();
                ((c - q) / (c + q), (eta * c - q) / (eta * c + q))
            }
        }
    }

    /// Loss at normal incidence, dB (for reports and the anchors' nominal loss).
    pub fn nominal_loss_db(&self) -> f64 {
        let (r, _) = self.coefficients(1.0);
        -20.0 * r.norm().max(1e-12).log10()
    }
}

/// A named material and how it reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    pub name: String,
    /// Loss at normal incidence, dB.
    pub reflection_loss_db: f64,
    pub reflection: Reflection,
}

impl Material {
    /// A material with a fixed reflection loss (dB).
    pub fn loss_db(name: impl Into<String>, db: f64) -> Material {
        Material {
            name: name.into(),
            reflection_loss_db: db,
            reflection: Reflection::LossDb(db),
        }
    }

    /// A dielectric with relative complex permittivity `η`.
    pub fn dielectric(name: impl Into<String>, eta: Complex64) -> Material {
        let reflection = Reflection::Dielectric(eta);
        Material {
            name: name.into(),
            reflection_loss_db: reflection.nominal_loss_db(),
            reflection,
        }
    }

    /// An ITU-R P.2040 material (`concrete`, `brick`, `plasterboard`, `wood`, `glass`,
    /// `ceiling_board`, `floorboard`, or `metal` = perfect conductor) at a carrier frequency.
    pub fn itu(name: impl Into<String>, kind: &str, carrier_hz: f64) -> Option<Material> {
        if kind == "metal" {
            return Some(Material {
                name: name.into(),
                reflection_loss_db: 0.0,
                reflection: Reflection::Conductor,
            });
        }
        let [a, b, c, d] = ITU_MATERIALS.iter().find(|(n, _)| *n == kind)?.1;
        let f_ghz = carrier_hz / 1e9;
        let eps = a * f_ghz.powf(b);
        let sigma = c * f_ghz.powf(d);
        let eta = Complex64::new(
            eps,
            -sigma / (EPS0 * 2.0 * std::f64::consts::PI * carrier_hz),
        );
        Some(Material::dielectric(name, eta))
    }
}

/// What a face belongs to (for drawing and for reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceOwner {
    /// Wall, floor or ceiling of the hall.
    Hall,
    /// A face of obstacle number `i` (index into [`Scene::obstacles`]).
    Obstacle(usize),
}

/// A planar rectangular reflector `o + s·u + t·v`, `s, t ∈ [0,1]`, lit from the side of `normal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub name: String,
    pub origin: [f64; 3],
    pub u: [f64; 3],
    pub v: [f64; 3],
    /// Unit normal, pointing to the side from which the face reflects.
    pub normal: [f64; 3],
    /// Loss at normal incidence, dB.
    pub reflection_loss_db: f64,
    pub reflection: Reflection,
    pub owner: FaceOwner,
    // cached: u/|u|², v/|v|² for the in-face test
    u_inv: [f64; 3],
    v_inv: [f64; 3],
}

impl Face {
    /// A rectangle with corner `origin` and edges `u`, `v`; the normal is `u × v` normalised,
    /// flipped if `flip` is set. `u` and `v` must be orthogonal and non-zero.
    pub fn rectangle(
        name: impl Into<String>,
        origin: [f64; 3],
        u: [f64; 3],
        v: [f64; 3],
        flip: bool,
        reflection: Reflection,
        owner: FaceOwner,
    ) -> Face {
        let n = cross(u, v);
        let len = dot(n, n).sqrt().max(f64::MIN_POSITIVE);
        let s = if flip { -1.0 / len } else { 1.0 / len };
        Face {
            name: name.into(),
            origin,
            u,
            v,
            normal: scale(n, s),
            reflection_loss_db: reflection.nominal_loss_db(),
            reflection,
            owner,
            u_inv: scale(u, 1.0 / dot(u, u).max(f64::MIN_POSITIVE)),
            v_inv: scale(v, 1.0 / dot(v, v).max(f64::MIN_POSITIVE)),
        }
    }

    /// Signed distance of `p` from the plane, positive on the lit side: `(p − o)·n`.
    pub fn signed_distance(&self, p: [f64; 3]) -> f64 {
        dot(sub(p, self.origin), self.normal)
    }

    /// Mirror image `p − 2((p − o)·n) n`.
    pub fn mirror(&self, p: [f64; 3]) -> [f64; 3] {
        sub(p, scale(self.normal, 2.0 * self.signed_distance(p)))
    }

    /// Whether a point of the plane lies on the rectangle (with a tolerance of `EPS_M`).
    pub fn contains_planar(&self, p: [f64; 3]) -> bool {
        let d = sub(p, self.origin);
        let s = dot(d, self.u_inv);
        let t = dot(d, self.v_inv);
        let tol_s = EPS_M * dot(self.u_inv, self.u_inv).sqrt();
        let tol_t = EPS_M * dot(self.v_inv, self.v_inv).sqrt();
        s >= -tol_s && s <= 1.0 + tol_s && t >= -tol_t && t <= 1.0 + tol_t
    }

    /// Where the segment `a → b` crosses the plane: `(t*, point)` with `t* ∈ (0, 1)`, or `None`
    /// when it does not cross strictly between its ends.
    pub fn segment_hit(&self, a: [f64; 3], b: [f64; 3]) -> Option<(f64, [f64; 3])> {
        let d = sub(b, a);
        let den = dot(d, self.normal);
        if den.abs() < 1e-15 {
            return None;
        }
        let t = dot(sub(self.origin, a), self.normal) / den;
        if !(t > 0.0 && t < 1.0) {
            return None;
        }
        Some((t, add(a, scale(d, t))))
    }
}

/// An axis-aligned box obstacle `[min, max]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxObstacle {
    pub name: String,
    /// Free-text kind ("rack", "machine", "pillar", ...), for drawing.
    pub kind: String,
    pub min: [f64; 3],
    pub max: [f64; 3],
    pub material: Material,
}

impl BoxObstacle {
    /// Whether the open segment `a → b` passes through the box's interior (slab test). Segments
    /// that only graze the surface (e.g. end on a face after a reflection) are not blocked.
    pub fn blocks(&self, a: [f64; 3], b: [f64; 3]) -> bool {
        segment_hits_box(a, b, self.min, self.max)
    }

    /// Whether `p` lies strictly inside the box shrunk by `EPS_M`.
    pub fn contains(&self, p: [f64; 3]) -> bool {
        (0..3).all(|i| p[i] > self.min[i] + EPS_M && p[i] < self.max[i] - EPS_M)
    }
}

/// Slab test: does the segment `a + t (b − a)`, `t ∈ (0, 1)`, pass through the interior of the box
/// `[lo, hi]` shrunk by `EPS_M` on every side?
pub fn segment_hits_box(a: [f64; 3], b: [f64; 3], lo: [f64; 3], hi: [f64; 3]) -> bool {
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for i in 0..3 {
        let l = lo[i] + EPS_M;
        let h = hi[i] - EPS_M;
        let d = b[i] - a[i];
        if d.abs() < 1e-300 {
            if a[i] <= l || a[i] >= h {
                return false;
            }
        } else {
            let inv = 1.0 / d;
            let (mut ta, mut tb) = ((l - a[i]) * inv, (h - a[i]) * inv);
            if ta > tb {
                std::mem::swap(&mut ta, &mut tb);
            }
            t0 = t0.max(ta);
            t1 = t1.min(tb);
            if t0 >= t1 {
                return false;
            }
        }
    }
    t1 - t0 > 1e-12
}

/// A receiver: a reference position and antenna offsets (metres, relative to it).
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub id: String,
    pub position: [f64; 3],
    pub antenna_offsets: Vec<[f64; 3]>,
}

impl Receiver {
    /// Absolute position of antenna `a`.
    pub fn antenna_position(&self, a: usize) -> [f64; 3] {
        add(self.position, self.antenna_offsets[a])
    }
}

/// An axis-aligned rectangle of a floor map (metres).
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRect {
    pub name: String,
    pub kind: String,
    pub min: [f64; 2],
    pub max: [f64; 2],
    /// Height of the top of the obstacle.
    pub top_m: f64,
}

/// What a floor map shows: wall segments in the x–y plane and obstacle footprints.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorOutline {
    pub walls: Vec<[[f64; 2]; 2]>,
    pub obstacles: Vec<FloorRect>,
}

/// A hall: box `[0, size]` with its six faces, box obstacles whose visible faces also reflect, and
/// receivers. Faces are stored once; virtual anchors refer to them by index.
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Hall extent, from the origin: `[x, y, z]` in metres.
    pub size: [f64; 3],
    pub faces: Vec<Face>,
    pub obstacles: Vec<BoxObstacle>,
    pub receivers: Vec<Receiver>,
}

/// Materials of the hall's faces.
#[derive(Debug, Clone, PartialEq)]
pub struct HallMaterials {
    pub walls: Material,
    pub floor: Material,
    pub ceiling: Material,
}

impl Scene {
    /// Builds the faces of a hall `[0, size]` (normals inward) and of every obstacle (normals
    /// outward; the bottom face is left out when the box stands on the floor, and faces flush with a
    /// hall wall are left out because no ray can reach them).
    pub fn new(
        size: [f64; 3],
        hall: &HallMaterials,
        obstacles: Vec<BoxObstacle>,
        receivers: Vec<Receiver>,
    ) -> Scene {
        let [x, y, z] = size;
        let h = FaceOwner::Hall;
        let w = hall.walls.reflection;
        let mut faces = vec![
            Face::rectangle(
                "floor",
                [0.0; 3],
                [x, 0.0, 0.0],
                [0.0, y, 0.0],
                false,
                hall.floor.reflection,
                h,
            ),
            Face::rectangle(
                "ceiling",
                [0.0, 0.0, z],
                [x, 0.0, 0.0],
                [0.0, y, 0.0],
                true,
                hall.ceiling.reflection,
                h,
            ),
            Face::rectangle(
                "wall y=0",
                [0.0; 3],
                [0.0, 0.0, z],
                [x, 0.0, 0.0],
                false,
                w,
                h,
            ),
            Face::rectangle(
                format!("wall y={y}"),
                [0.0, y, 0.0],
                [0.0, 0.0, z],
                [x, 0.0, 0.0],
                true,
                w,
                h,
            ),
            Face::rectangle(
                "wall x=0",
                [0.0; 3],
                [0.0, y, 0.0],
                [0.0, 0.0, z],
                false,
                w,
                h,
            ),
            Face::rectangle(
                format!("wall x={x}"),
                [x, 0.0, 0.0],
                [0.0, y, 0.0],
                [0.0, 0.0, z],
                true,
                w,
                h,
            ),
        ];
        for (i, ob) in obstacles.iter().enumerate() {
            faces.extend(box_faces(i, ob, size));
        }
        Scene {
            size,
            faces,
            obstacles,
            receivers,
        }
    }

    /// Whether the open segment `a → b` passes through any obstacle.
    pub fn blocked(&self, a: [f64; 3], b: [f64; 3]) -> bool {
        self.obstacles.iter().any(|o| o.blocks(a, b))
    }

    /// Whether `p` is inside the hall and outside every obstacle.
    pub fn is_free(&self, p: [f64; 3]) -> bool {
        (0..3).all(|i| p[i] > 0.0 && p[i] < self.size[i])
            && !self.obstacles.iter().any(|o| o.contains(p))
    }

    /// Walls as 2D segments and obstacle footprints, for floor maps.
    pub fn floor_outline(&self) -> FloorOutline {
        let [x, y, _] = self.size;
        FloorOutline {
            walls: vec![
                [[0.0, 0.0], [x, 0.0]],
                [[x, 0.0], [x, y]],
                [[x, y], [0.0, y]],
                [[0.0, y], [0.0, 0.0]],
            ],
            obstacles: self
                .obstacles
                .iter()
                .map(|o| FloorRect {
                    name: o.name.clone(),
                    kind: o.kind.clone(),
                    min: [o.min[0], o.min[1]],
                    max: [o.max[0], o.max[1]],
                    top_m: o.max[2],
                })
                .collect(),
        }
    }
}

/// The reflecting faces of a box: four sides and the top (outward normals), plus the bottom when
/// the box floats above the floor. Faces lying on a hall boundary are skipped.
fn box_faces(index: usize, ob: &BoxObstacle, hall: [f64; 3]) -> Vec<Face> {
    let [x0, y0, z0] = ob.min;
    let [x1, y1, z1] = ob.max;
    let (dx, dy, dz) = (x1 - x0, y1 - y0, z1 - z0);
    let loss = ob.material.reflection;
    let owner = FaceOwner::Obstacle(index);
    let n = &ob.name;
    let mut out = Vec::with_capacity(6);
    // (name, origin, u, v, flip, lies on hall boundary)
    let candidates = [
        (
            "x-",
            [x0, y0, z0],
            [0.0, 0.0, dz],
            [0.0, dy, 0.0],
            false,
            x0 <= 0.0,
        ),
        (
            "x+",
            [x1, y0, z0],
            [0.0, dy, 0.0],
            [0.0, 0.0, dz],
            false,
            x1 >= hall[0],
        ),
        (
            "y-",
            [x0, y0, z0],
            [dx, 0.0, 0.0],
            [0.0, 0.0, dz],
            false,
            y0 <= 0.0,
        ),
        (
            "y+",
            [x0, y1, z0],
            [0.0, 0.0, dz],
            [dx, 0.0, 0.0],
            false,
            y1 >= hall[1],
        ),
        (
            "top",
            [x0, y0, z1],
            [dx, 0.0, 0.0],
            [0.0, dy, 0.0],
            false,
            z1 >= hall[2],
        ),
        (
            "bottom",
            [x0, y0, z0],
            [0.0, dy, 0.0],
            [dx, 0.0, 0.0],
            false,
            z0 <= 0.0,
        ),
    ];
    for (side, o, u, v, flip, on_boundary) in candidates {
        if !on_boundary {
            out.push(Face::rectangle(
                format!("{n} {side}"),
                o,
                u,
                v,
                flip,
                loss,
                owner,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mat(l: f64) -> Material {
        Material::loss_db("m", l)
    }

    #[test]
    fn box_face_normals_point_outward() {
        let ob = BoxObstacle {
            name: "b".into(),
            kind: "machine".into(),
            min: [1.0, 2.0, 0.0],
            max: [3.0, 5.0, 2.0],
            material: mat(1.0),
        };
        let faces = box_faces(0, &ob, [10.0, 10.0, 5.0]);
        assert_eq!(faces.len(), 5);
        let centre = [2.0, 3.5, 1.0];
        for f in &faces {
            assert!(
                f.signed_distance(centre) < 0.0,
                "{} normal {:?}",
                f.name,
                f.normal
            );
            let n: f64 = dot(f.normal, f.normal);
            assert!((n - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn hall_face_normals_point_inward() {
        let hm = HallMaterials {
            walls: mat(6.0),
            floor: mat(6.0),
            ceiling: mat(6.0),
        };
        let s = Scene::new([20.0, 15.0, 6.0], &hm, vec![], vec![]);
        for f in &s.faces {
            assert!(f.signed_distance([10.0, 7.5, 3.0]) > 0.0, "{}", f.name);
        }
    }

    /// Fresnel coefficients: normal incidence `r_⊥ = (1 − √η)/(1 + √η) = −r_∥`, grazing incidence
    /// −1 for both, and `r_∥ = 0` at the Brewster angle `tan θ_B = √η` of a lossless dielectric.
    #[test]
    fn fresnel_limits() {
        let eta = Complex64::new(5.24, 0.0);
        let r = Reflection::Dielectric(eta);
        let (s, p) = r.coefficients(1.0);
        let want = (1.0 - eta.sqrt()) / (1.0 + eta.sqrt());
        assert!((s - want).norm() < 1e-12 && (p + want).norm() < 1e-12);
        let (s, p) = r.coefficients(1e-9);
        assert!((s + 1.0).norm() < 1e-6 && (p + 1.0).norm() < 1e-6);
        let theta_b = 5.24f64.sqrt().atan();
        let (_, p) = r.coefficients(theta_b.cos());
        assert!(p.norm() < 1e-12, "{p}");
        // ITU concrete at 5.2 GHz: ε' = 5.24, σ = 0.0462 · 5.2^0.7822 S/m
        let m = Material::itu("c", "concrete", 5.2e9).unwrap();
        let Reflection::Dielectric(e) = m.reflection else {
            panic!()
        };
        let sigma = 0.0462 * 5.2f64.powf(0.7822);
        assert!((e.re - 5.24).abs() < 1e-12);
        assert!((e.im + sigma / (EPS0 * 2.0 * std::f64::consts::PI * 5.2e9)).abs() < 1e-9);
        assert!(Material::itu("m", "metal", 5e9).unwrap().reflection == Reflection::Conductor);
        assert!(Material::itu("x", "cheese", 5e9).is_none());
    }

    #[test]
    fn mirror_is_an_involution_and_flips_the_side() {
        let f = Face::rectangle(
            "f",
            [0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 1.0],
            false,
            Reflection::Conductor,
            FaceOwner::Hall,
        );
        let p = [0.3, -2.0, 5.0];
        let q = f.mirror(p);
        let r = f.mirror(q);
        for i in 0..3 {
            assert!((p[i] - r[i]).abs() < 1e-12);
        }
        assert!((f.signed_distance(p) + f.signed_distance(q)).abs() < 1e-12);
    }
}
