//! Specular paths by the image-source method: virtual anchors (mirror images of a receiver in the
//! scene's faces, up to a given reflection order) and, for a transmitter position, the paths that
//! really exist (visibility and blocking).
//!
//! Equations (SI units):
//! - virtual anchor of order n for faces `f_1 … f_n` (f_1 next to the receiver):
//!   `V_0 = r`, `V_i = M_{f_i}(V_{i−1})` with `M_f(p) = p − 2((p − o_f)·n_f) n_f`;
//! - the path exists when the back-trace from the transmitter is valid: starting at `P = x`, for
//!   `i = n … 1` the segment `P → V_i` crosses face `f_i` at a point `Q_i` inside the rectangle,
//!   `P` lies on the lit side of `f_i`, and the segment `P → Q_i` is not blocked by an obstacle; then
//!   `P = Q_i`; finally the segment `P → r` is not blocked;
//! - delay `τ = |x − V_n| / c` (unfolded path length over the speed of light);
//! - complex gain `α = λ/(4π |x − V_n|) · A`, free-space amplitude times the polarimetric
//!   reflection factor `A` for vertically polarised isotropic antennas (as in common ray tracers):
//!   the transmitted field is `e = θ̂(k₀)` for the departure direction `k₀`; at each bounce with
//!   normal `n`, `s = k × n / |k × n|`, `p = s × k`, `k' = k − 2(k·n)n`, `p' = s × k'` and
//!   `e' = r_⊥ (e·s) s + r_∥ (e·p) p'` (coefficients in [`crate::geometry`]); finally
//!   `A = e · θ̂(−k_last)`. Line of sight gives `A = 1`.
//!   The propagation phase `e^{−j2π f τ}` is *not* in `α` (see [`crate::ofdm`]).

use num_complex::Complex64;

use crate::geometry::{cross, distance, dot, scale, sub, Scene, EPS_M};

/// Speed of light in vacuum, m/s.
pub const SPEED_OF_LIGHT: f64 = 299_792_458.0;

/// A mirror image of a receiver antenna. `faces[0]` is the last face a ray touches before reaching
/// the receiver; `faces` is empty for the receiver itself (line of sight).
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualAnchor {
    pub position: [f64; 3],
    pub faces: Vec<usize>,
    /// Sum of the reflection losses of `faces`, dB.
    pub loss_db: f64,
    /// `images[i]` = image after `i + 1` reflections (`images.last() == position`); empty for LoS.
    pub images: Vec<[f64; 3]>,
}

impl VirtualAnchor {
    pub fn order(&self) -> usize {
        self.faces.len()
    }
}

/// One specular propagation path from the transmitter to a receiver antenna.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Time of flight, seconds.
    pub delay_s: f64,
    /// Complex amplitude at the carrier, without the propagation phase `e^{−j2π f τ}`.
    pub gain: Complex64,
    /// Number of reflections (0 = line of sight).
    pub order: usize,
    /// Index into the anchor list the path came from (0 = line of sight).
    pub anchor_index: usize,
    /// Faces touched, receiver side first (indices into `Scene::faces`).
    pub faces: Vec<usize>,
    pub los: bool,
}

/// The virtual anchors of one receiver antenna, computed once and reused for every transmitter
/// position. Anchors that can never be part of a path are pruned: the receiver must lie on the lit
/// side of `f_1` and every image `V_i` on the lit side of `f_{i+1}` (a reflected ray leaves a face
/// into its lit half-space, and so does its unfolded continuation).
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorSet {
    pub receiver: [f64; 3],
    pub max_order: usize,
    /// `anchors[0]` is the receiver itself.
    pub anchors: Vec<VirtualAnchor>,
}

impl AnchorSet {
    pub fn new(scene: &Scene, receiver: [f64; 3], max_order: usize) -> AnchorSet {
        let mut anchors = vec![VirtualAnchor {
            position: receiver,
            faces: Vec::new(),
            loss_db: 0.0,
            images: Vec::new(),
        }];
        let mut frontier = vec![0usize];
        for _order in 1..=max_order {
            let mut next = Vec::new();
            for &parent in &frontier {
                for (fi, face) in scene.faces.iter().enumerate() {
                    let p = &anchors[parent];
                    if p.faces.last() == Some(&fi) {
                        continue;
                    }
                    if face.signed_distance(p.position) <= EPS_M {
                        continue;
                    }
                    let position = face.mirror(p.position);
                    let mut faces = p.faces.clone();
                    faces.push(fi);
                    let mut images = p.images.clone();
                    images.push(position);
                    let loss_db = p.loss_db + face.reflection_loss_db;
                    anchors.push(VirtualAnchor {
                        position,
                        faces,
                        loss_db,
                        images,
                    });
                    next.push(anchors.len() - 1);
                }
            }
            frontier = next;
        }
        AnchorSet {
            receiver,
            max_order,
            anchors,
        }
    }

    /// Whether the path through anchor `index` exists for a transmitter at `tx` (see module doc).
    pub fn is_visible(&self, scene: &Scene, index: usize, tx: [f64; 3]) -> bool {
        self.trace(scene, index, tx, &mut Vec::new())
    }

    /// Back-traces the path through anchor `index`; on success `points` holds the reflection
    /// points in travel order (transmitter side first).
    pub fn trace(
        &self,
        scene: &Scene,
        index: usize,
        tx: [f64; 3],
        points: &mut Vec<[f64; 3]>,
    ) -> bool {
        points.clear();
        let a = &self.anchors[index];
        let mut cur = tx;
        for i in (0..a.faces.len()).rev() {
            let face = &scene.faces[a.faces[i]];
            if face.signed_distance(cur) <= EPS_M {
                return false;
            }
            let Some((_, q)) = face.segment_hit(cur, a.images[i]) else {
                return false;
            };
            if !face.contains_planar(q) || scene.blocked(cur, q) {
                return false;
            }
            points.push(q);
            cur = q;
        }
        !scene.blocked(cur, self.receiver)
    }

    /// All existing paths from `tx`, in anchor order. `carrier_hz` sets the wavelength of the
    /// free-space amplitude `λ/(4πd)`.
    pub fn paths(&self, scene: &Scene, tx: [f64; 3], carrier_hz: f64) -> Vec<Path> {
        let lambda = SPEED_OF_LIGHT / carrier_hz;
        let mut out = Vec::new();
        let mut points = Vec::new();
        for (i, a) in self.anchors.iter().enumerate() {
            if !self.trace(scene, i, tx, &mut points) {
                continue;
            }
            let d = distance(tx, a.position);
            let free = lambda / (4.0 * std::f64::consts::PI * d.max(1e-3));
            let pol = polarimetric_factor(scene, &a.faces, tx, &points, self.receiver);
            out.push(Path {
                delay_s: d / SPEED_OF_LIGHT,
                gain: pol * free,
                order: a.order(),
                anchor_index: i,
                faces: a.faces.clone(),
                los: i == 0,
            });
        }
        out
    }
}

fn unit(v: [f64; 3]) -> [f64; 3] {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        scale(v, 1.0 / n)
    } else {
        v
    }
}

/// Unit vector θ̂ of the spherical coordinates of direction `v` (unit):
/// `(cos θ cos φ, cos θ sin φ, −sin θ)`; at the poles φ = 0 is taken.
fn theta_hat(v: [f64; 3]) -> [f64; 3] {
    let rho = (v[0] * v[0] + v[1] * v[1]).sqrt();
    if rho < 1e-12 {
        return [v[2].signum(), 0.0, 0.0];
    }
    [v[2] * v[0] / rho, v[2] * v[1] / rho, -rho]
}

type CVec = [Complex64; 3];

fn cdot_real(e: &CVec, v: [f64; 3]) -> Complex64 {
    e[0] * v[0] + e[1] * v[1] + e[2] * v[2]
}

/// Polarimetric reflection factor `A` of a path (module doc): vertical polarisation at both ends.
/// `points` are the reflection points in travel order, `faces_rx_first` the anchor's faces.
fn polarimetric_factor(
    scene: &Scene,
    faces_rx_first: &[usize],
    tx: [f64; 3],
    points: &[[f64; 3]],
    rx: [f64; 3],
) -> Complex64 {
    let first = points.first().copied().unwrap_or(rx);
    let mut k = unit(sub(first, tx));
    let t = theta_hat(k);
    let mut e: CVec = t.map(|x| Complex64::new(x, 0.0));
    for (i, &fi) in faces_rx_first.iter().rev().enumerate() {
        let face = &scene.faces[fi];
        let n = face.normal;
        let kn = dot(k, n);
        let (rs, rp) = face.reflection.coefficients(kn.abs());
        let mut s = cross(k, n);
        if dot(s, s) < 1e-24 {
            // normal incidence: any direction across the ray
            s = cross(
                k,
                if k[0].abs() < 0.9 {
                    [1.0, 0.0, 0.0]
                } else {
                    [0.0, 1.0, 0.0]
                },
            );
        }
        let s = unit(s);
        let p_in = cross(s, k);
        let k_out = sub(k, scale(n, 2.0 * kn));
        let p_out = cross(s, k_out);
        let es = cdot_real(&e, s) * rs;
        let ep = cdot_real(&e, p_in) * rp;
        e = [0, 1, 2].map(|j| es * s[j] + ep * p_out[j]);
        // the next leg's direction (equal to k_out up to rounding)
        let next = if i + 1 < points.len() {
            points[i + 1]
        } else {
            rx
        };
        k = unit(sub(next, points[i]));
    }
    cdot_real(&e, theta_hat(scale(k, -1.0)))
}

/// Convenience: the paths from `tx` to a receiver antenna at `rx` up to `max_order` reflections,
/// sorted by delay. Recomputes the anchors; for many transmitter positions build an [`AnchorSet`].
pub fn paths(
    scene: &Scene,
    tx: [f64; 3],
    rx: [f64; 3],
    max_order: usize,
    carrier_hz: f64,
) -> Vec<Path> {
    let mut p = AnchorSet::new(scene, rx, max_order).paths(scene, tx, carrier_hz);
    p.sort_by(|a, b| a.delay_s.total_cmp(&b.delay_s));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{BoxObstacle, HallMaterials, Material};

    fn mat(l: f64) -> Material {
        Material::loss_db("m", l)
    }
    fn empty_hall() -> Scene {
        let hm = HallMaterials {
            walls: mat(3.0),
            floor: mat(6.0),
            ceiling: mat(9.0),
        };
        Scene::new([20.0, 15.0, 6.0], &hm, vec![], vec![])
    }

    #[test]
    fn los_delay_is_distance_over_c() {
        let s = empty_hall();
        let tx = [3.0, 4.0, 1.2];
        let rx = [17.0, 12.5, 4.5];
        let p = paths(&s, tx, rx, 2, 5.2e9);
        assert!(p[0].los);
        let d = ((14.0f64).powi(2) + 8.5f64.powi(2) + 3.3f64.powi(2)).sqrt();
        assert!((p[0].delay_s - d / SPEED_OF_LIGHT).abs() < 1e-18);
        let lambda = SPEED_OF_LIGHT / 5.2e9;
        assert!((p[0].gain.re - lambda / (4.0 * std::f64::consts::PI * d)).abs() < 1e-15);
    }

    /// In an empty box every image of every order up to 2 is visible from inside, and the images
    /// are the analytic ones: first order `(−x, y, z)`, `(2X − x, y, z)`, ...; second order across
    /// two different faces, e.g. `(−x, −y, z)` or `(x − 2X... )` combinations.
    #[test]
    fn box_images_equal_analytic_mirrors() {
        let s = empty_hall();
        let size = s.size;
        let rx = [2.0, 3.0, 4.0];
        let set = AnchorSet::new(&s, rx, 2);
        // analytic: per axis, the coordinate image set of order k reflections on that axis
        let mut expected: Vec<[f64; 3]> = Vec::new();
        let img = |c: f64, l: f64, k: i32| -> Vec<f64> {
            match k {
                0 => vec![c],
                1 => vec![-c, 2.0 * l - c],
                // two reflections on the same axis: walls 0 then L or L then 0
                _ => vec![c - 2.0 * l, c + 2.0 * l],
            }
        };
        for kx in 0..3 {
            for ky in 0..3 {
                for kz in 0..3 {
                    if kx + ky + kz > 2 {
                        continue;
                    }
                    for x in img(rx[0], size[0], kx) {
                        for y in img(rx[1], size[1], ky) {
                            for z in img(rx[2], size[2], kz) {
                                expected.push([x, y, z]);
                            }
                        }
                    }
                }
            }
        }
        let mut got: Vec<[f64; 3]> = set.anchors.iter().map(|a| a.position).collect();
        // two reflections on different axes come in both orders and give the same point
        let key = |p: &[f64; 3]| p.map(|c| (c * 1e6).round() as i64);
        got.sort_by_key(key);
        got.dedup_by_key(|p| key(p));
        expected.sort_by_key(key);
        expected.dedup_by_key(|p| key(p));
        assert_eq!(
            got.len(),
            expected.len(),
            "got {got:?}\nexpected {expected:?}"
        );
        for (g, e) in got.iter().zip(&expected) {
            for i in 0..3 {
                assert!((g[i] - e[i]).abs() < 1e-9, "{g:?} vs {e:?}");
            }
        }
        // from an inner point of an empty box every distinct image gives exactly one path: of the
        // two orders of a cross-axis pair (x-wall then y-wall, or y-wall then x-wall) only one is
        // geometrically valid
        let tx = [11.0, 7.0, 1.5];
        let mut seen: Vec<[i64; 3]> = set
            .paths(&s, tx, 5e9)
            .iter()
            .map(|p| key(&set.anchors[p.anchor_index].position))
            .collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        assert_eq!(n, seen.len(), "an image gave two paths");
        assert_eq!(n, expected.len(), "every image gives a path");
    }

    /// With vertical polarisation, a floor bounce in a vertical plane of incidence keeps the field
    /// in that plane (factor r_∥), a wall bounce between points at equal height has the field
    /// across it (factor r_⊥), each at the geometric incidence angle.
    #[test]
    fn polarimetric_factor_reduces_to_fresnel_in_symmetric_cases() {
        let concrete = Material::itu("concrete", "concrete", 5.2e9).unwrap();
        let hm = HallMaterials {
            walls: concrete.clone(),
            floor: concrete.clone(),
            ceiling: concrete.clone(),
        };
        let s = Scene::new([20.0, 15.0, 6.0], &hm, vec![], vec![]);
        let lambda = SPEED_OF_LIGHT / 5.2e9;
        // floor (face 0): tx and rx in the plane y = 5
        let (tx, rx) = ([3.0, 5.0, 1.2], [11.0, 5.0, 4.0]);
        let set = AnchorSet::new(&s, rx, 1);
        let p = set.paths(&s, tx, 5.2e9);
        let floor = p.iter().find(|q| q.faces == vec![0]).unwrap();
        let d = floor.delay_s * SPEED_OF_LIGHT;
        let (_, rp) = concrete.reflection.coefficients((1.2 + 4.0) / d);
        let want = rp * (lambda / (4.0 * std::f64::consts::PI * d));
        assert!(
            (floor.gain - want).norm() < 1e-9 * want.norm(),
            "{} vs {want}",
            floor.gain
        );
        // wall y = 0 (face 2): tx and rx at the same height
        let (tx, rx) = ([3.0, 5.0, 2.0], [11.0, 7.0, 2.0]);
        let set = AnchorSet::new(&s, rx, 1);
        let p = set.paths(&s, tx, 5.2e9);
        let wall = p.iter().find(|q| q.faces == vec![2]).unwrap();
        let d = wall.delay_s * SPEED_OF_LIGHT;
        let (rs, _) = concrete.reflection.coefficients((5.0 + 7.0) / d);
        let want = rs * (lambda / (4.0 * std::f64::consts::PI * d));
        assert!(
            (wall.gain - want).norm() < 1e-9 * want.norm(),
            "{} vs {want}",
            wall.gain
        );
        // line of sight: factor 1
        let los = p.iter().find(|q| q.los).unwrap();
        assert!((los.gain.im).abs() < 1e-15 && los.gain.re > 0.0);
    }

    #[test]
    fn obstacle_blocks_los_and_its_face_reflects() {
        let hm = HallMaterials {
            walls: mat(3.0),
            floor: mat(6.0),
            ceiling: mat(9.0),
        };
        let ob = BoxObstacle {
            name: "wall".into(),
            kind: "rack".into(),
            min: [9.0, 2.0, 0.0],
            max: [10.0, 12.0, 5.0],
            material: mat(1.0),
        };
        let s = Scene::new([20.0, 15.0, 6.0], &hm, vec![ob], vec![]);
        let rx = [5.0, 7.0, 2.0];
        let p = paths(&s, [15.0, 7.0, 2.0], rx, 1, 5e9);
        assert!(!p.iter().any(|q| q.los));
        // reflection from the box's x- face (x = 9) back to the receiver side exists for tx on the
        // same side: image of rx in x=9 is (13, 7, 2)
        let p = paths(&s, [6.0, 8.0, 2.0], rx, 1, 5e9);
        let d = distance([6.0, 8.0, 2.0], [13.0, 7.0, 2.0]);
        assert!(p
            .iter()
            .any(|q| q.order == 1 && (q.delay_s * SPEED_OF_LIGHT - d).abs() < 1e-9));
    }
}
