//! The position bound when the map is learned too: every frame's position *and* the map (each
//! receiver's virtual anchors and fixed offset) unknown together, the map shared by all frames.
//!
//! [`crate::crlb`]'s bounds take the map as known, which rfloc's training does not have: it
//! learns the anchors from the same frames it locates. Parameters: `x_n` (`dims` per frame) and
//! the map `m` (3 per virtual anchor, one offset `β_r` (m) per receiver). A path `p` of receiver
//! `r` from anchor `v` has the delay `τ_p = (|x − v| + β_r) / c`, so its gradients are
//! `∂τ/∂x = u/c`, `∂τ/∂v = −u/c` (`u = (x − v)/|x − v|`) and `∂τ/∂β_r = 1/c`. With each link's
//! delay information `F` ([`crate::crlb::link_delay_information`]: gains and clock eliminated)
//! the joint Fisher information is `Σ_links Gᵀ F G` with `G` these gradients. Frames share only
//! the map, so it has the block form
//!
//! ```text
//!   J = [ A   B ]     A = diag(A_n): each frame's position information (the known-map bound's)
//!       [ Bᵀ  C ]     B_n: frame n's cross-information with the map, C: the map's own
//! ```
//!
//! and eliminating the positions leaves the map's information `S = C − Σ_n B_nᵀ A_n⁻¹ B_n`. The
//! bound on frame n's position is then `A_n⁻¹ + W_n S⁺ W_nᵀ` with `W_n = A_n⁻¹ B_n`, and two
//! frames' errors are correlated through the map: `Cov(x_n, x_k) = W_n S⁺ W_kᵀ`.
//!
//! **Gauge.** Moving every position and every anchor by one rigid motion (in 2D with the height
//! known: the two horizontal translations and the rotation about the vertical; in 3D all six)
//! changes no delay, so `S` has that null space and only positions up to a rigid fit are
//! bounded, as rfloc's are evaluated. `S⁺` is the pseudo-inverse on the complement of those
//! directions (projected out exactly), and [`SharedMapBound::sample`] draws errors that the
//! caller aligns with a rigid fit over all frames. Other null directions (eigenvalues under
//! 1e-12 of the largest: an anchor only one frame sees, say) are reported in
//! [`SharedMapBound::null_directions`]. Weakly determined directions above that are kept, and
//! they can dominate: with free path gains the anchors of a line-of-sight cluster are barely
//! told apart, and the bound runs to metres (`reports/bounds.md`, "The map unknown too").
//!
//! Numerics: `B_nᵀ A_n⁻¹ B_n` is formed as `ZᵀZ` with `Z = Qᵀ Y_m`, where `Y = R G` stacks the
//! links' rows (`F = RᵀR`) and `Q` is an orthonormal basis of `Y_x`. Its rounding is then that
//! of `C_n` whatever `A_n`'s condition number, so a barely located frame adds no spurious weak
//! directions to `S`.
//!
//! Which frames inform the map: all frames given. An estimator that also refits the map on the
//! frames it locates could use them, so the bound is over the whole recording.

use std::collections::HashMap;

use faer::{Mat, MatRef, Side};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::error::ChannelError;
use crate::image_sources::SPEED_OF_LIGHT;

/// One link of one frame: its paths' anchors and delay gradients, and the information of their
/// delays ([`crate::crlb::link_delay_information`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MapLink {
    /// The receiver (its offset `β_r` is a map parameter).
    pub receiver: usize,
    /// Per path, the index of its virtual anchor in the caller's list of anchors (a receiver
    /// itself is an anchor too, for its line-of-sight paths).
    pub anchors: Vec<usize>,
    /// Per path, `∂τ/∂x` (s/m), `(x − v)/(c|x − v|)`.
    pub gradients: Vec<[f64; 3]>,
    /// `F`, `P×P` row-major (s⁻²).
    pub information: Vec<f64>,
}

/// A map with fewer parameters than free anchors: every anchor coordinate a linear function of
/// parameters `θ`, `v = T θ` (the offsets `β_r` stay parameters of their own). For walls with
/// known orientations (`ChannelModel::wall_structure`), `θ` is each receiver's position and each
/// face's offset along its normal, and an image is the receiver mirrored face by face.
#[derive(Debug, Clone, PartialEq)]
pub struct MapStructure {
    /// Parameters `θ` besides the offsets.
    pub parameters: usize,
    /// Per anchor and axis (`3a + axis`), `∂v/∂θ` as `(θ index, value)` pairs.
    pub jacobian: Vec<Vec<(usize, f64)>>,
    /// The rigid motions that `θ` keeps free, each as a `θ` vector (with known wall orientations
    /// only the translations).
    pub gauge: Vec<Vec<f64>>,
}

/// One draw of [`SharedMapBound::draw_parts`] (m): per frame its own error and the part the
/// map's error puts on it (their sum is the frame's error), and per anchor its position's error
/// (`None` for anchors no frame sees).
#[derive(Debug, Clone)]
pub struct Draw {
    pub own: Vec<[f64; 3]>,
    pub through_map: Vec<[f64; 3]>,
    pub anchors: Vec<Option<[f64; 3]>>,
}

/// One frame's part of the bound.
#[derive(Debug, Clone)]
struct FrameTerms {
    /// `A_n⁺` (`dims×dims` used).
    a_pinv: [[f64; 3]; 3],
    /// `A_n^{+1/2}`, to draw the frame's own noise.
    a_pinv_sqrt: [[f64; 3]; 3],
    /// Whether `A_n` has full rank: the frame is located by its own links on the map.
    identifiable: bool,
    /// The map parameters (compact indices) frame n sees and `W_n` over them (`dims × idx.len()`,
    /// row-major).
    idx: Vec<usize>,
    w: Vec<f64>,
}

/// The bound of [`crate::crlb_map`] (module docs) over a set of frames.
#[derive(Debug, Clone)]
pub struct SharedMapBound {
    dims: usize,
    frames: Vec<FrameTerms>,
    /// `S⁺` over the compact map parameters (`M×M`, row-major).
    map_cov: Vec<f64>,
    /// `L` with `S⁺ = L Lᵀ` (`M × rank`, row-major), to draw the map's error.
    map_factor: Vec<f64>,
    rank: usize,
    /// Anchor coordinates and offsets seen by at least one frame.
    pub map_parameters: usize,
    /// The map's free parameters: `map_parameters` for free anchors, `θ` and the offsets with a
    /// [`MapStructure`].
    pub parameters: usize,
    /// Null directions of the map's information besides the rigid motions (no frame informs
    /// them).
    pub null_directions: usize,
    /// The rigid motions removed (3 in 2D, 6 in 3D; a [`MapStructure`] names its own).
    pub gauge: usize,
    /// Compact map parameter → global (`3a + axis` for anchor `a`, then the offsets).
    owner: Vec<usize>,
    n_anchors: usize,
}

/// Relative size under which an eigenvalue counts as zero (the same rule as
/// [`crate::crlb::peb_from_information`]'s determinant test for a 2×2 information).
const NULL: f64 = 1e-12;

impl SharedMapBound {
    /// The bound for `frames` (each a list of links), `anchors` the positions of the virtual
    /// anchors the links' paths name (m), `n_receivers` the number of receivers (offsets),
    /// `dims` 2 (height known: positions move in the horizontal plane) or 3.
    pub fn new(
        frames: &[Vec<MapLink>],
        anchors: &[[f64; 3]],
        n_receivers: usize,
        dims: usize,
    ) -> Result<SharedMapBound, ChannelError> {
        Self::with_structure(frames, anchors, n_receivers, dims, None)
    }

    /// [`SharedMapBound::new`] with the anchors tied together by `structure` (`None`: every
    /// anchor free). The map's information in `θ` is `Tᵀ S T`, eliminating the positions
    /// commutes with the linear map `v = T θ`.
    pub fn with_structure(
        frames: &[Vec<MapLink>],
        anchors: &[[f64; 3]],
        n_receivers: usize,
        dims: usize,
        structure: Option<&MapStructure>,
    ) -> Result<SharedMapBound, ChannelError> {
        if !(dims == 2 || dims == 3) {
            return Err(ChannelError::invalid(
                "dims",
                format!("{dims} (need 2 or 3)"),
            ));
        }
        // compact indices of the map parameters frames see: 3 per anchor, then one per offset
        let mut compact: HashMap<usize, usize> = HashMap::new();
        let mut owner: Vec<usize> = Vec::new(); // compact → global parameter
        let n_anchor_params = 3 * anchors.len();
        for (n, links) in frames.iter().enumerate() {
            for (l, link) in links.iter().enumerate() {
                let p = link.anchors.len();
                if link.gradients.len() != p || link.information.len() != p * p {
                    return Err(ChannelError::invalid(
                        "shared-map bound",
                        format!(
                        "frame {n}, link {l}: {p} anchors, {} gradients, {} information entries",
                        link.gradients.len(),
                        link.information.len()
                    ),
                    ));
                }
                if link.receiver >= n_receivers {
                    return Err(ChannelError::invalid(
                        "shared-map bound",
                        format!(
                            "frame {n}, link {l}: receiver {} of {n_receivers}",
                            link.receiver
                        ),
                    ));
                }
                if let Some(&a) = link.anchors.iter().find(|&&a| a >= anchors.len()) {
                    return Err(ChannelError::invalid(
                        "shared-map bound",
                        format!("frame {n}, link {l}: anchor {a} of {}", anchors.len()),
                    ));
                }
                let globals = link
                    .anchors
                    .iter()
                    .flat_map(|&a| [3 * a, 3 * a + 1, 3 * a + 2])
                    .chain(std::iter::once(n_anchor_params + link.receiver));
                for g in globals {
                    compact.entry(g).or_insert_with(|| {
                        owner.push(g);
                        owner.len() - 1
                    });
                }
            }
        }
        let m = owner.len();
        let mut s = vec![0.0f64; m * m];
        let mut terms = Vec::with_capacity(frames.len());
        for links in frames {
            let t = frame_terms(links, &compact, n_anchor_params, dims, &mut s, m);
            terms.push(t);
        }
        // the map's parameters: the compact anchor coordinates and offsets themselves, or θ and
        // the offsets through T (compact rows × θ columns, row-major)
        let t: Option<(usize, Vec<f64>)> = match structure {
            None => None,
            Some(st) => {
                if st.jacobian.len() != n_anchor_params {
                    return Err(ChannelError::invalid(
                        "shared-map bound",
                        format!(
                            "map structure: {} anchor coordinates, the links name {}",
                            st.jacobian.len(),
                            n_anchor_params
                        ),
                    ));
                }
                let cols = st.parameters + n_receivers;
                let mut t = vec![0.0; m * cols];
                for (c, &gl) in owner.iter().enumerate() {
                    if gl < n_anchor_params {
                        for &(k, v) in &st.jacobian[gl] {
                            if k >= st.parameters {
                                return Err(ChannelError::invalid(
                                    "shared-map bound",
                                    format!("map structure: parameter {k} of {}", st.parameters),
                                ));
                            }
                            t[c * cols + k] += v;
                        }
                    } else {
                        t[c * cols + st.parameters + (gl - n_anchor_params)] = 1.0;
                    }
                }
                Some((cols, t))
            }
        };
        let gauge_vectors: Vec<Vec<f64>> = match (structure, &t) {
            (Some(st), Some((cols, _))) => st
                .gauge
                .iter()
                .map(|g| {
                    let mut v = g.clone();
                    v.resize(*cols, 0.0);
                    v
                })
                .collect(),
            _ => {
                // the rigid motions, map part: translations, and rotations about the origin
                let mut g = Vec::new();
                let axis = |d: usize| {
                    let mut v = vec![0.0; m];
                    for (c, &gl) in owner.iter().enumerate() {
                        if gl < n_anchor_params && gl % 3 == d {
                            v[c] = 1.0;
                        }
                    }
                    v
                };
                let rotation = |i: usize, j: usize| {
                    // the infinitesimal rotation in the (i, j) plane: v_i ← −v_j, v_j ← v_i
                    let mut v = vec![0.0; m];
                    for (c, &gl) in owner.iter().enumerate() {
                        if gl >= n_anchor_params {
                            continue;
                        }
                        let a = anchors[gl / 3];
                        let d = gl % 3;
                        if d == i {
                            v[c] = -a[j];
                        } else if d == j {
                            v[c] = a[i];
                        }
                    }
                    v
                };
                for d in 0..dims {
                    g.push(axis(d));
                }
                g.push(rotation(0, 1));
                if dims == 3 {
                    g.push(rotation(1, 2));
                    g.push(rotation(2, 0));
                }
                g
            }
        };
        // the information over the map's parameters: S itself, or Tᵀ S T
        let (p, mut sp) = match &t {
            None => (m, s),
            Some((cols, t)) => {
                let sm = MatRef::from_row_major_slice(&s, m, m);
                let tm = MatRef::from_row_major_slice(t, m, *cols);
                (*cols, row_major(&(tm.transpose() * (sm * tm))))
            }
        };
        let q = orthonormal(gauge_vectors);
        let gauge = q.len();
        project_both_sides(&mut sp, p, &q);
        let (values, vectors) = symmetric_eigen(&sp, p)?;
        let top = values.iter().copied().fold(0.0f64, f64::max);
        let keep: Vec<usize> = (0..p).filter(|&i| values[i] > NULL * top).collect();
        let rank = keep.len();
        // L over the parameters, then over the compact anchor coordinates (T L)
        let mut factor = vec![0.0; p * rank];
        for (col, &i) in keep.iter().enumerate() {
            let sc = 1.0 / values[i].sqrt();
            for row in 0..p {
                factor[row * rank + col] = vectors[row * p + i] * sc;
            }
        }
        let map_factor = match &t {
            None => factor,
            Some((cols, t)) => row_major(
                &(MatRef::from_row_major_slice(t, m, *cols)
                    * MatRef::from_row_major_slice(&factor, *cols, rank)),
            ),
        };
        let fm = MatRef::from_row_major_slice(&map_factor, m, rank);
        let map_cov = row_major(&(fm * fm.transpose()));
        Ok(SharedMapBound {
            dims,
            frames: terms,
            map_cov,
            map_factor,
            rank,
            map_parameters: m,
            parameters: p,
            null_directions: (p - rank).saturating_sub(gauge),
            gauge,
            owner,
            n_anchors: anchors.len(),
        })
    }

    /// Frames in the bound.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether frame `n`'s own links fix its position on a known map (else its bound is
    /// infinite, map known or not).
    pub fn identifiable(&self, n: usize) -> bool {
        self.frames[n].identifiable
    }

    /// The known-map bound of frame `n`, `sqrt(trace(A_n⁻¹))` (m; infinite when not
    /// identifiable): [`crate::crlb::peb_from_information`] of the same links.
    pub fn known_map_peb(&self, n: usize) -> f64 {
        let f = &self.frames[n];
        if !f.identifiable {
            return f64::INFINITY;
        }
        (0..self.dims).map(|d| f.a_pinv[d][d]).sum::<f64>().sqrt()
    }

    /// Frame `n`'s covariance with the map unknown, `A_n⁺ + W_n S⁺ W_nᵀ` (m², `dims×dims`
    /// used), before any rigid fit: the map's part is the one with no rigid-motion component.
    pub fn covariance(&self, n: usize) -> [[f64; 3]; 3] {
        let f = &self.frames[n];
        let k = f.idx.len();
        let mut c = f.a_pinv;
        for (r, row_c) in c.iter_mut().enumerate().take(self.dims) {
            for (cc, out) in row_c.iter_mut().enumerate().take(self.dims) {
                let mut x = 0.0;
                for (i, &gi) in f.idx.iter().enumerate() {
                    let wri = f.w[r * k + i];
                    if wri == 0.0 {
                        continue;
                    }
                    let row = &self.map_cov[gi * self.map_parameters..];
                    for (j, &gj) in f.idx.iter().enumerate() {
                        x += wri * row[gj] * f.w[cc * k + j];
                    }
                }
                *out += x;
            }
        }
        c
    }

    /// Frame `n`'s bound with the map unknown, `sqrt(trace(covariance))` (m; infinite when not
    /// identifiable).
    pub fn peb(&self, n: usize) -> f64 {
        if !self.frames[n].identifiable {
            return f64::INFINITY;
        }
        let c = self.covariance(n);
        (0..self.dims).map(|d| c[d][d]).sum::<f64>().max(0.0).sqrt()
    }

    /// Draw `k` of a reproducible series ([`SharedMapBound::sample`] from ChaCha8 seeded with
    /// `seed`, stream `k`), in its parts: each frame's own error, the part the map's error puts
    /// on it, and the map's error itself.
    pub fn draw_parts(&self, seed: u64, k: u64) -> Draw {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(k);
        let (own, through_map, dm) = self.sample_parts(&mut rng);
        let mut anchors = vec![None; self.n_anchors];
        for (c, &g) in self.owner.iter().enumerate() {
            if g < 3 * self.n_anchors {
                let e = anchors[g / 3].get_or_insert([0.0; 3]);
                e[g % 3] = dm[c];
            }
        }
        Draw {
            own,
            through_map,
            anchors,
        }
    }

    /// One draw of every frame's error from the joint Gaussian of the bound: a map error
    /// `δm ~ N(0, S⁺)` shared by all frames and each frame's own `A_n^{+1/2} z_n`, so
    /// `δx_n = A_n^{+1/2} z_n − W_n δm` (m; zero beyond `dims`). A frame that is not
    /// identifiable gets no noise along the directions its links do not see: the caller treats
    /// it as unlocated.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<[f64; 3]> {
        let (own, through_map, _) = self.sample_parts(rng);
        own.iter()
            .zip(&through_map)
            .map(|(a, b)| [a[0] + b[0], a[1] + b[1], a[2] + b[2]])
            .collect()
    }

    /// The frames' own errors, the map's part of them and the map's `δm` (compact parameters)
    /// of one draw.
    #[allow(clippy::type_complexity)]
    fn sample_parts<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> (Vec<[f64; 3]>, Vec<[f64; 3]>, Vec<f64>) {
        let m = self.map_parameters;
        let z: Vec<f64> = (0..self.rank).map(|_| rng.sample(StandardNormal)).collect();
        let dm: Vec<f64> = (0..m)
            .map(|r| {
                self.map_factor[r * self.rank..(r + 1) * self.rank]
                    .iter()
                    .zip(&z)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        let mut own = Vec::with_capacity(self.frames.len());
        let mut through_map = Vec::with_capacity(self.frames.len());
        for f in &self.frames {
            let k = f.idx.len();
            let zn: [f64; 3] = std::array::from_fn(|_| rng.sample(StandardNormal));
            let mut e = [0.0; 3];
            let mut t = [0.0; 3];
            for r in 0..self.dims {
                let own_r: f64 = (0..self.dims).map(|c| f.a_pinv_sqrt[r][c] * zn[c]).sum();
                let map: f64 = f
                    .idx
                    .iter()
                    .enumerate()
                    .map(|(i, &g)| f.w[r * k + i] * dm[g])
                    .sum();
                e[r] = own_r;
                t[r] = -map;
            }
            own.push(e);
            through_map.push(t);
        }
        (own, through_map, dm)
    }
}

/// Frame n's `A_n`, `W_n = A_n⁺ B_n`, and its part of `S` (`C_n − B_nᵀ A_n⁺ B_n`, added into
/// `s`, `m×m` row-major).
fn frame_terms(
    links: &[MapLink],
    compact: &HashMap<usize, usize>,
    n_anchor_params: usize,
    dims: usize,
    s: &mut [f64],
    m: usize,
) -> FrameTerms {
    // the frame's map parameters, local order
    let mut idx: Vec<usize> = Vec::new();
    let mut local: HashMap<usize, usize> = HashMap::new();
    let mut at = |g: usize, idx: &mut Vec<usize>| -> usize {
        let c = compact[&g];
        *local.entry(c).or_insert_with(|| {
            idx.push(c);
            idx.len() - 1
        })
    };
    // per link and path: the local indices of (v_x, v_y, v_z) and β
    let mut where_: Vec<Vec<([usize; 3], usize)>> = Vec::with_capacity(links.len());
    for link in links {
        let b = at(n_anchor_params + link.receiver, &mut idx);
        where_.push(
            link.anchors
                .iter()
                .map(|&a| {
                    (
                        [
                            at(3 * a, &mut idx),
                            at(3 * a + 1, &mut idx),
                            at(3 * a + 2, &mut idx),
                        ],
                        b,
                    )
                })
                .collect(),
        );
    }
    let k = idx.len();
    let mut a = [[0.0f64; 3]; 3];
    let mut bm = vec![0.0f64; 3 * k]; // dims × k used
    let mut cm = vec![0.0f64; k * k];
    let inv_c = 1.0 / SPEED_OF_LIGHT;
    for (link, pos) in links.iter().zip(&where_) {
        let p = link.anchors.len();
        // each path's sparse map gradient: −u/c on its anchor, 1/c on its receiver's offset
        let grads: Vec<[(usize, f64); 4]> = (0..p)
            .map(|i| {
                let g = link.gradients[i];
                let (v, b) = pos[i];
                [(v[0], -g[0]), (v[1], -g[1]), (v[2], -g[2]), (b, inv_c)]
            })
            .collect();
        for i in 0..p {
            for j in 0..p {
                let f = link.information[i * p + j];
                if f == 0.0 {
                    continue;
                }
                let (gi, gj) = (link.gradients[i], link.gradients[j]);
                for r in 0..dims {
                    for c in 0..dims {
                        a[r][c] += gi[r] * f * gj[c];
                    }
                    for &(c, w) in &grads[j] {
                        bm[r * k + c] += gi[r] * f * w;
                    }
                }
                for &(r, wr) in &grads[i] {
                    for &(c, wc) in &grads[j] {
                        cm[r * k + c] += wr * f * wc;
                    }
                }
            }
        }
    }
    let (a_pinv, a_pinv_sqrt, identifiable) = small_pinv(&a, dims);
    // W = A⁺ B
    let mut w = vec![0.0f64; dims * k];
    for r in 0..dims {
        for c in 0..k {
            w[r * k + c] = (0..dims).map(|t| a_pinv[r][t] * bm[t * k + c]).sum();
        }
    }
    // S += C − Bᵀ A⁺ B, with Bᵀ A⁺ B = Zᵀ Z, Z = Qᵀ Y_m: Y = R G stacks the links' rows
    // (F = Rᵀ R) and Q is an orthonormal basis of Y_x's columns. Through Q the subtraction is
    // exact to rounding of ‖C‖ however ill-conditioned A_n is; through A⁺ its rounding grows
    // with A_n's condition number, and a nearly unidentifiable frame adds spurious weak
    // directions to S.
    let mut factors: Vec<Vec<f64>> = Vec::with_capacity(links.len()); // R_l, rank × P
    let mut yx: Vec<Vec<f64>> = vec![Vec::new(); dims]; // columns of Y_x
    for link in links {
        let p = link.anchors.len();
        let r = psd_factor(&link.information, p);
        let rank = r.len() / p.max(1);
        for row in 0..rank {
            for (d, col) in yx.iter_mut().enumerate() {
                col.push((0..p).map(|j| r[row * p + j] * link.gradients[j][d]).sum());
            }
        }
        factors.push(r);
    }
    let q = orthonormal(yx);
    let mut z = vec![0.0f64; q.len() * k];
    let mut offset = 0;
    for ((link, pos), r) in links.iter().zip(&where_).zip(&factors) {
        let p = link.anchors.len();
        let rank = r.len() / p.max(1);
        for (t, qt) in q.iter().enumerate() {
            for j in 0..p {
                // (Q_lᵀ R_l)_{t j}
                let tj: f64 = (0..rank).map(|row| qt[offset + row] * r[row * p + j]).sum();
                if tj == 0.0 {
                    continue;
                }
                let g = link.gradients[j];
                let (v, b) = pos[j];
                for (c, w) in [(v[0], -g[0]), (v[1], -g[1]), (v[2], -g[2]), (b, inv_c)] {
                    z[t * k + c] += tj * w;
                }
            }
        }
        offset += rank;
    }
    for r in 0..k {
        for c in 0..k {
            let ztz: f64 = (0..q.len()).map(|t| z[t * k + r] * z[t * k + c]).sum();
            s[idx[r] * m + idx[c]] += cm[r * k + c] - ztz;
        }
    }
    FrameTerms {
        a_pinv,
        a_pinv_sqrt,
        identifiable,
        idx,
        w,
    }
}

/// Pseudo-inverse and its square root of a symmetric `dims×dims` (≤ 3) information, and whether
/// it has full rank (eigenvalues under [`NULL`] of the largest count as zero).
fn small_pinv(a: &[[f64; 3]; 3], dims: usize) -> ([[f64; 3]; 3], [[f64; 3]; 3], bool) {
    let mut m = Mat::<f64>::zeros(dims, dims);
    for r in 0..dims {
        for c in 0..dims {
            m[(r, c)] = a[r][c];
        }
    }
    let mut pinv = [[0.0; 3]; 3];
    let mut root = [[0.0; 3]; 3];
    let Ok(e) = m.self_adjoint_eigen(Side::Lower) else {
        return (pinv, root, false);
    };
    let vals: Vec<f64> = (0..dims).map(|i| e.S().column_vector()[i]).collect();
    let top = vals.iter().copied().fold(0.0f64, f64::max);
    if top.is_nan() || top <= 0.0 {
        return (pinv, root, false);
    }
    let mut full = true;
    for (i, &l) in vals.iter().enumerate() {
        if l <= NULL * top {
            full = false;
            continue;
        }
        for r in 0..dims {
            for c in 0..dims {
                let uu = e.U()[(r, i)] * e.U()[(c, i)];
                pinv[r][c] += uu / l;
                root[r][c] += uu / l.sqrt();
            }
        }
    }
    (pinv, root, full)
}

/// `R` (`rank × p`, row-major) with `F = Rᵀ R` for a symmetric positive semi-definite `p×p` `F`:
/// `R = Λ^{1/2} Uᵀ` over the eigenvalues above [`NULL`] of the largest.
fn psd_factor(f: &[f64], p: usize) -> Vec<f64> {
    if p == 0 || f.len() != p * p {
        return Vec::new();
    }
    let m = Mat::<f64>::from_fn(p, p, |r, c| f[r * p + c]);
    let Ok(e) = m.self_adjoint_eigen(Side::Lower) else {
        return Vec::new();
    };
    let vals: Vec<f64> = (0..p).map(|i| e.S().column_vector()[i]).collect();
    let top = vals.iter().copied().fold(0.0f64, f64::max);
    let mut out = Vec::new();
    for (i, &l) in vals.iter().enumerate() {
        if l.is_nan() || l <= NULL * top {
            continue;
        }
        let s = l.sqrt();
        out.extend((0..p).map(|j| s * e.U()[(j, i)]));
    }
    out
}

/// A matrix's entries, row by row.
fn row_major(a: &Mat<f64>) -> Vec<f64> {
    (0..a.nrows())
        .flat_map(|r| (0..a.ncols()).map(move |c| a[(r, c)]))
        .collect()
}

/// Gram–Schmidt (twice) of non-zero vectors; drops the dependent ones.
fn orthonormal(vs: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut out: Vec<Vec<f64>> = Vec::new();
    for mut v in vs {
        let before = dot(&v, &v);
        if before == 0.0 {
            continue;
        }
        for _ in 0..2 {
            for q in &out {
                let c = dot(q, &v);
                v.iter_mut().zip(q).for_each(|(x, qi)| *x -= c * qi);
            }
        }
        let n2 = dot(&v, &v);
        if n2 > 1e-20 * before {
            let s = 1.0 / n2.sqrt();
            v.iter_mut().for_each(|x| *x *= s);
            out.push(v);
        }
    }
    out
}

/// `S ← P S P` with `P = I − Q Qᵀ` (`Q` orthonormal rows in `q`).
fn project_both_sides(s: &mut [f64], m: usize, q: &[Vec<f64>]) {
    let project_rows = |s: &mut [f64]| {
        // S ← S P (each row minus its components along q)
        for r in 0..m {
            let row = &mut s[r * m..(r + 1) * m];
            for v in q {
                let c: f64 = row.iter().zip(v).map(|(a, b)| a * b).sum();
                row.iter_mut().zip(v).for_each(|(a, b)| *a -= c * b);
            }
        }
    };
    project_rows(s);
    // S symmetric: P S P = (P (S P)ᵀ)ᵀ
    transpose(s, m);
    project_rows(s);
    transpose(s, m);
    // symmetrise rounding
    for r in 0..m {
        for c in r + 1..m {
            let x = 0.5 * (s[r * m + c] + s[c * m + r]);
            s[r * m + c] = x;
            s[c * m + r] = x;
        }
    }
}

fn transpose(s: &mut [f64], m: usize) {
    for r in 0..m {
        for c in r + 1..m {
            s.swap(r * m + c, c * m + r);
        }
    }
}

/// Eigenvalues (ascending) and eigenvectors (column `i` ↔ value `i`, row-major `m×m`) of a
/// symmetric row-major matrix.
fn symmetric_eigen(s: &[f64], m: usize) -> Result<(Vec<f64>, Vec<f64>), ChannelError> {
    if m == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let a = Mat::<f64>::from_fn(m, m, |r, c| s[r * m + c]);
    let e = a.self_adjoint_eigen(Side::Lower).map_err(|e| {
        ChannelError::invalid(
            "shared-map bound",
            format!("eigen-decomposition of the map information failed: {e:?}"),
        )
    })?;
    let values: Vec<f64> = (0..m).map(|i| e.S().column_vector()[i]).collect();
    let u = e.U();
    let mut vectors = vec![0.0; m * m];
    for r in 0..m {
        for c in 0..m {
            vectors[r * m + c] = u[(r, c)];
        }
    }
    Ok((values, vectors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crlb::{link_delay_information, GainKnowledge, LinkPath, Unknowns};
    use crate::ofdm::TonePlan;
    use num_complex::Complex64;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A small hall: three receivers, each seen directly and through one wall image (x = 0 or
    /// y = 0 mirror), and `n` tag positions at 1 m height; the links' delay information from
    /// 80 MHz tones with free-space gains and unknown gains.
    fn problem(n: usize, seed: u64) -> (Vec<Vec<MapLink>>, Vec<[f64; 3]>, Vec<[f64; 3]>) {
        let receivers = [[1.0, 1.5, 4.0], [14.0, 2.0, 3.5], [7.0, 11.0, 4.5]];
        let mut anchors = Vec::new();
        for r in receivers {
            anchors.push(r);
            anchors.push(if r[0] < 7.5 {
                [-r[0], r[1], r[2]]
            } else {
                [r[0], -r[1], r[2]]
            });
        }
        let plan = TonePlan::wifi(80, 5.2e9).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut positions = Vec::new();
        let mut frames = Vec::new();
        for _ in 0..n {
            let x = [
                rng.random_range(2.0..13.0),
                rng.random_range(2.0..10.0),
                1.0,
            ];
            positions.push(x);
            let mut links = Vec::new();
            for r in 0..receivers.len() {
                let mut paths = Vec::new();
                for k in 0..2 {
                    let v = anchors[2 * r + k];
                    let d: [f64; 3] = [x[0] - v[0], x[1] - v[1], x[2] - v[2]];
                    let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
                    let c = SPEED_OF_LIGHT;
                    paths.push(LinkPath {
                        delay_s: len / c,
                        gain: Complex64::from_polar(
                            if k == 0 { 1.0 } else { 0.6 } / len,
                            rng.random_range(0.0..std::f64::consts::TAU),
                        ),
                        delay_gradient: [d[0] / (len * c), d[1] / (len * c), d[2] / (len * c)],
                    });
                }
                let unknowns = Unknowns {
                    gains: GainKnowledge::Unknown,
                    clock_offset: false,
                };
                links.push(MapLink {
                    receiver: r,
                    anchors: vec![2 * r, 2 * r + 1],
                    gradients: paths.iter().map(|p| p.delay_gradient).collect(),
                    information: link_delay_information(
                        plan.offsets_hz(),
                        &paths,
                        1e-4,
                        unknowns,
                        None,
                    ),
                });
            }
            frames.push(links);
        }
        (frames, anchors, positions)
    }

    /// The joint information of positions (2 per frame) and map (3 per anchor, then one offset
    /// per receiver), assembled densely from the chain rule path by path: the reference the
    /// Schur-complement route is checked against.
    fn dense_information(frames: &[Vec<MapLink>], n_anchors: usize, n_rx: usize) -> Mat<f64> {
        let np = 2 * frames.len();
        let q = np + 3 * n_anchors + n_rx;
        let mut j = Mat::<f64>::zeros(q, q);
        for (n, links) in frames.iter().enumerate() {
            for l in links {
                let p = l.anchors.len();
                let rows: Vec<Vec<f64>> = (0..p)
                    .map(|i| {
                        let mut g = vec![0.0; q];
                        let u = l.gradients[i];
                        g[2 * n] = u[0];
                        g[2 * n + 1] = u[1];
                        for d in 0..3 {
                            g[np + 3 * l.anchors[i] + d] = -u[d];
                        }
                        g[np + 3 * n_anchors + l.receiver] = 1.0 / SPEED_OF_LIGHT;
                        g
                    })
                    .collect();
                for a in 0..p {
                    for b in 0..p {
                        let f = l.information[a * p + b];
                        for r in 0..q {
                            if rows[a][r] == 0.0 {
                                continue;
                            }
                            for c in 0..q {
                                j[(r, c)] += rows[a][r] * f * rows[b][c];
                            }
                        }
                    }
                }
            }
        }
        j
    }

    /// The rigid motions of positions and map together (2D): x, y translation, rotation about z.
    fn rigid_motions(positions: &[[f64; 3]], anchors: &[[f64; 3]], n_rx: usize) -> Vec<Vec<f64>> {
        let np = 2 * positions.len();
        let q = np + 3 * anchors.len() + n_rx;
        let mut out = Vec::new();
        for d in 0..2 {
            let mut v = vec![0.0; q];
            for n in 0..positions.len() {
                v[2 * n + d] = 1.0;
            }
            for a in 0..anchors.len() {
                v[np + 3 * a + d] = 1.0;
            }
            out.push(v);
        }
        let mut v = vec![0.0; q];
        for (n, p) in positions.iter().enumerate() {
            v[2 * n] = -p[1];
            v[2 * n + 1] = p[0];
        }
        for (a, p) in anchors.iter().enumerate() {
            v[np + 3 * a] = -p[1];
            v[np + 3 * a + 1] = p[0];
        }
        out.push(v);
        out
    }

    /// The dense route: the inverse of the joint information `j` with the map's rigid-motion
    /// part held at zero, `U (Uᵀ J U)⁺ Uᵀ`, `U` every position direction and the map directions
    /// orthogonal to the map part of the rigid motions.
    fn dense_constrained_covariance(
        j: &Mat<f64>,
        positions: &[[f64; 3]],
        anchors: &[[f64; 3]],
    ) -> Mat<f64> {
        let q = j.nrows();
        let np = 2 * positions.len();
        let qm = orthonormal(
            rigid_motions(positions, anchors, 3)
                .into_iter()
                .map(|v| v[np..].to_vec())
                .collect(),
        );
        let mm = q - np;
        let unit: Vec<Vec<f64>> = (0..mm)
            .map(|i| {
                let mut e = vec![0.0; mm];
                e[i] = 1.0;
                e
            })
            .collect();
        let comp = orthonormal(qm.iter().cloned().chain(unit).collect());
        let comp = &comp[qm.len()..];
        let u = Mat::<f64>::from_fn(q, np + comp.len(), |r, c| {
            if c < np {
                f64::from(u8::from(r == c))
            } else if r >= np {
                comp[c - np][r - np]
            } else {
                0.0
            }
        });
        let inv = (u.transpose() * j * &u)
            .self_adjoint_eigen(Side::Lower)
            .unwrap()
            .pseudoinverse();
        &u * inv * u.transpose()
    }

    /// Moving the positions and the map by one rigid motion changes no delay: the joint
    /// information has exactly those three null directions (a sign error in the anchors'
    /// gradients, or an offset that did not enter every path of its receiver, would break this).
    #[test]
    fn rigid_motions_are_the_joint_informations_null_space() {
        let (frames, anchors, positions) = problem(12, 1);
        let j = dense_information(&frames, anchors.len(), 3);
        let q = j.nrows();
        let norm: f64 = (0..q).map(|i| j[(i, i)]).sum();
        for (k, u) in rigid_motions(&positions, &anchors, 3).iter().enumerate() {
            let un: f64 = u.iter().map(|x| x * x).sum::<f64>().sqrt();
            let ju: f64 = (0..q)
                .map(|r| (0..q).map(|c| j[(r, c)] * u[c]).sum::<f64>().powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                ju < 1e-9 * norm * un,
                "motion {k}: |J u| = {ju:e}, scale {norm:e}"
            );
        }
        let e = j.self_adjoint_eigen(Side::Lower).unwrap();
        let vals: Vec<f64> = (0..q).map(|i| e.S().column_vector()[i]).collect();
        let top = vals.iter().copied().fold(0.0f64, f64::max);
        let zero = vals.iter().filter(|&&l| l <= 1e-12 * top).count();
        assert_eq!(zero, 3, "null directions of the joint information");
        let b = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap();
        assert_eq!((b.gauge, b.null_directions), (3, 0));
        assert_eq!(b.map_parameters, 3 * anchors.len() + 3);
    }

    /// Per frame, `A_n⁻¹ + W_n S⁺ W_nᵀ` is the position block of the joint information's
    /// inverse with the map's rigid-motion part held at zero, `U (Uᵀ J U)⁻¹ Uᵀ`, computed densely
    /// from the full matrix; and the known-map bound is `A_n⁻¹`'s.
    #[test]
    fn the_schur_route_matches_the_dense_constrained_inverse() {
        let (frames, anchors, positions) = problem(10, 2);
        let b = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap();
        let j = dense_information(&frames, anchors.len(), 3);
        let cov = dense_constrained_covariance(&j, &positions, &anchors);
        for n in 0..positions.len() {
            let c = b.covariance(n);
            for r in 0..2 {
                for cc in 0..2 {
                    let want = cov[(2 * n + r, 2 * n + cc)];
                    let scale = cov[(2 * n, 2 * n)] + cov[(2 * n + 1, 2 * n + 1)];
                    assert!(
                        (c[r][cc] - want).abs() < 1e-6 * scale,
                        "frame {n} ({r},{cc}): {} vs {want}",
                        c[r][cc]
                    );
                }
            }
            // the known-map bound: the 2×2 position block of J alone
            let a = [
                [j[(2 * n, 2 * n)], j[(2 * n, 2 * n + 1)], 0.0],
                [j[(2 * n + 1, 2 * n)], j[(2 * n + 1, 2 * n + 1)], 0.0],
                [0.0; 3],
            ];
            let known = crate::crlb::peb_from_information(&a, 2);
            assert!(
                (b.known_map_peb(n) - known).abs() < 1e-9 * known,
                "frame {n}"
            );
            assert!(b.peb(n) > known, "frame {n}: the map costs something");
        }
    }

    /// The same frames seen k times: the map's information grows k-fold, so the map's part of
    /// every frame's variance shrinks k-fold and the bound tends to the known-map one.
    #[test]
    fn repeated_frames_shrink_the_maps_part() {
        let (frames, anchors, _) = problem(8, 3);
        let once = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap();
        let ten: Vec<Vec<MapLink>> = (0..10).flat_map(|_| frames.iter().cloned()).collect();
        let many = SharedMapBound::new(&ten, &anchors, 3, 2).unwrap();
        for n in 0..frames.len() {
            let k = once.known_map_peb(n).powi(2);
            let part1 = once.peb(n).powi(2) - k;
            let part10 = many.peb(n).powi(2) - k;
            assert!(part1 > 0.0);
            assert!(
                (part10 * 10.0 / part1 - 1.0).abs() < 1e-6,
                "frame {n}: {part1} {part10}"
            );
        }
    }

    /// The draws have the bound's covariance (Monte Carlo, 4,000 draws: within 10 % on the
    /// diagonal) and two frames' errors are correlated through the map as `W_n S⁺ W_kᵀ` says.
    #[test]
    fn draws_follow_the_bounds_covariance() {
        let (frames, anchors, _) = problem(6, 4);
        let b = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let draws = 4000;
        let mut sum = vec![[[0.0f64; 2]; 2]; frames.len()];
        let mut cross = 0.0;
        for _ in 0..draws {
            let e = b.sample(&mut rng);
            for (n, en) in e.iter().enumerate() {
                assert_eq!(en[2], 0.0);
                for r in 0..2 {
                    for c in 0..2 {
                        sum[n][r][c] += en[r] * en[c];
                    }
                }
            }
            cross += e[0][0] * e[1][0];
        }
        for (n, s) in sum.iter().enumerate() {
            let c = b.covariance(n);
            for d in 0..2 {
                let got = s[d][d] / draws as f64;
                assert!(
                    (got / c[d][d] - 1.0).abs() < 0.1,
                    "frame {n} axis {d}: {got} vs {}",
                    c[d][d]
                );
            }
        }
        // the map's part of frames 0 and 1's x covariance, from the dense route above
        let f0 = &b.frames[0];
        let f1 = &b.frames[1];
        let mut want = 0.0;
        for (i, &gi) in f0.idx.iter().enumerate() {
            for (k, &gk) in f1.idx.iter().enumerate() {
                want += f0.w[i] * b.map_cov[gi * b.map_parameters + gk] * f1.w[k];
            }
        }
        let got = cross / draws as f64;
        let scale = (b.covariance(0)[0][0] * b.covariance(1)[0][0]).sqrt();
        assert!(
            (got - want).abs() < 0.06 * scale,
            "cross {got} vs {want} (scale {scale})"
        );
    }

    /// A draw's map error belongs to its frames' errors: the cross-covariance of frame 0's
    /// position with anchor 0's (the first receiver) over 4,000 draws is the dense constrained
    /// inverse's (sign included: a frame's error follows the map's), and the anchor's own
    /// variance too.
    #[test]
    fn map_draws_go_with_the_frames_draws() {
        let (frames, anchors, positions) = problem(8, 6);
        let b = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap();
        let j = dense_information(&frames, anchors.len(), 3);
        let np = 2 * positions.len();
        let cov = dense_constrained_covariance(&j, &positions, &anchors);
        let draws = 4000;
        let (mut cross, mut own) = (0.0, 0.0);
        for k in 0..draws {
            let d = b.draw_parts(11, k);
            let e: Vec<[f64; 3]> = d
                .own
                .iter()
                .zip(&d.through_map)
                .map(|(a, t)| [a[0] + t[0], a[1] + t[1], 0.0])
                .collect();
            let v = d.anchors[0].unwrap();
            cross += e[0][0] * v[0];
            own += v[0] * v[0];
        }
        let (cross, own) = (cross / draws as f64, own / draws as f64);
        let want_cross = cov[(0, np)];
        let want_own = cov[(np, np)];
        let scale = (cov[(0, 0)] * want_own).sqrt();
        assert!(
            want_cross.abs() > 0.2 * scale,
            "a test that can tell the sign"
        );
        assert!(
            (cross - want_cross).abs() < 0.06 * scale,
            "{cross} vs {want_cross}"
        );
        assert!((own / want_own - 1.0).abs() < 0.1, "{own} vs {want_own}");
    }

    /// A structure that is the identity (`θ` = every anchor coordinate, the same rigid motions
    /// free) gives the free map's bound: the `Tᵀ S T` route and its `T L` factor are exact.
    #[test]
    fn an_identity_structure_is_the_free_map() {
        let (frames, anchors, positions) = problem(9, 7);
        let free = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap();
        let np = 2 * positions.len();
        let st = MapStructure {
            parameters: 3 * anchors.len(),
            jacobian: (0..3 * anchors.len()).map(|i| vec![(i, 1.0)]).collect(),
            gauge: rigid_motions(&positions, &anchors, 3)
                .into_iter()
                .map(|v| v[np..np + 3 * anchors.len()].to_vec())
                .collect(),
        };
        let tied = SharedMapBound::with_structure(&frames, &anchors, 3, 2, Some(&st)).unwrap();
        assert_eq!((tied.gauge, tied.null_directions), (3, 0));
        for n in 0..positions.len() {
            let (a, b) = (free.peb(n), tied.peb(n));
            assert!((a / b - 1.0).abs() < 1e-6, "frame {n}: {a} vs {b}");
        }
        // and a structure that names a parameter it does not have is refused
        let mut bad = st.clone();
        bad.jacobian[0] = vec![(bad.parameters, 1.0)];
        assert!(SharedMapBound::with_structure(&frames, &anchors, 3, 2, Some(&bad)).is_err());
    }

    /// Bad input is a typed error, not a panic.
    #[test]
    fn inconsistent_links_are_refused() {
        let (mut frames, anchors, _) = problem(3, 5);
        frames[1][0].information.pop();
        let e = SharedMapBound::new(&frames, &anchors, 3, 2).unwrap_err();
        assert!(e.to_string().contains("frame 1, link 0"), "{e}");
        let (frames, anchors, _) = problem(3, 5);
        assert!(SharedMapBound::new(&frames, &anchors[..2], 3, 2).is_err());
        assert!(SharedMapBound::new(&frames, &anchors, 2, 2).is_err());
        assert!(SharedMapBound::new(&frames, &anchors, 3, 4).is_err());
    }
}
