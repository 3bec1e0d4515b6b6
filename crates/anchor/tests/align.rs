//! Rigid alignment: exact recovery (proptest), robustness to a wrong label, degenerate labels.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rfloc_anchor::{align, fit_rigid, AlignOptions, AnchorError, Dims, RigidTransform};

/// A random rotation (3D: from a unit quaternion; 2D: an angle), optionally mirrored.
fn random_transform(dims: Dims, angles: [f64; 4], shift: [f64; 3], mirror: bool) -> RigidTransform {
    let mut r = match dims {
        Dims::Two => {
            let (c, s) = (angles[0].cos(), angles[0].sin());
            [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        }
        Dims::Three => {
            let n = angles.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-3);
            let [w, x, y, z] = angles.map(|a| a / n);
            [
                [
                    1.0 - 2.0 * (y * y + z * z),
                    2.0 * (x * y - z * w),
                    2.0 * (x * z + y * w),
                ],
                [
                    2.0 * (x * y + z * w),
                    1.0 - 2.0 * (x * x + z * z),
                    2.0 * (y * z - x * w),
                ],
                [
                    2.0 * (x * z - y * w),
                    2.0 * (y * z + x * w),
                    1.0 - 2.0 * (x * x + y * y),
                ],
            ]
        }
    };
    if mirror {
        // Mirror the model frame in x before rotating: R · diag(−1, 1, 1).
        for row in r.iter_mut() {
            row[0] = -row[0];
        }
    }
    RigidTransform::new(dims, r, shift).unwrap()
}

fn points(rng: &mut ChaCha8Rng, n: usize, dims: Dims) -> Vec<[f64; 3]> {
    (0..n)
        .map(|_| {
            let z = if dims == Dims::Three {
                rng.random_range(0.0..6.0)
            } else {
                1.2
            };
            [rng.random_range(0.0..20.0), rng.random_range(0.0..15.0), z]
        })
        .collect()
}

fn max_transform_gap(a: &RigidTransform, b: &RigidTransform, probe: &[[f64; 3]]) -> f64 {
    probe
        .iter()
        .map(|&p| {
            let (x, y) = (a.apply(p), b.apply(p));
            (0..3).map(|k| (x[k] - y[k]).powi(2)).sum::<f64>().sqrt()
        })
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn recovers_random_rigid_transforms_exactly(
        three in any::<bool>(),
        mirror in any::<bool>(),
        robust in any::<bool>(),
        angles in prop::array::uniform4(-3.0f64..3.0),
        shift in prop::array::uniform3(-50.0f64..50.0),
        n_extra in 0usize..8,
        seed in any::<u64>(),
    ) {
        let dims = if three { Dims::Three } else { Dims::Two };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let truth_t = random_transform(dims, angles, shift, mirror);
        let model = points(&mut rng, dims.min_labels() + n_extra, dims);
        let labels = truth_t.apply_all(&model);
        let opts = AlignOptions { dims, robust, ..AlignOptions::default() };
        let a = match align(&model, &labels, None, &opts) {
            Ok(a) => a,
            // Random minimal sets can be nearly collinear; that must be the typed error.
            Err(AnchorError::Degenerate { .. }) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        prop_assert_eq!(a.transform.reflected, mirror);
        prop_assert!(a.rms < 1e-8, "rms {}", a.rms);
        prop_assert!(a.inliers.iter().all(|&b| b));
        for i in 0..3 { for j in 0..3 {
            prop_assert!((a.transform.rotation[i][j] - truth_t.rotation[i][j]).abs() < 1e-8);
        }}
        for k in 0..3 {
            prop_assert!((a.transform.translation[k] - truth_t.translation[k]).abs() < 1e-7);
        }
        // The inverse takes labels back to the model frame.
        let back = a.transform.inverse().apply_all(&labels);
        for (p, q) in back.iter().zip(&model) {
            for k in 0..3 { prop_assert!((p[k] - q[k]).abs() < 1e-7); }
        }
        // Serialises (it is stored inside the model artifact); serde_json's default float parser
        // may differ in the last bit, so compare to 1e-15.
        let json = serde_json::to_string(&a.transform).unwrap();
        let t2: RigidTransform = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(t2.reflected, a.transform.reflected);
        prop_assert_eq!(t2.dims, a.transform.dims);
        prop_assert!(max_transform_gap(&t2, &a.transform, &model) < 1e-12);
    }
}

#[test]
fn one_wrong_label_in_ten_does_not_move_the_fit_beyond_the_noise() {
    let sigma = 0.02;
    let probe: Vec<[f64; 3]> = (0..100)
        .map(|i| [(i % 10) as f64 * 2.0, (i / 10) as f64 * 1.5, 1.2])
        .collect();
    for (dims, seed) in [
        (Dims::Two, 1u64),
        (Dims::Two, 2),
        (Dims::Three, 3),
        (Dims::Three, 4),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let truth_t =
            random_transform(dims, [0.7, 0.2, -0.4, 0.9], [3.0, -8.0, 0.5], seed % 2 == 0);
        let model = points(&mut rng, 10, dims);
        let mut labels: Vec<[f64; 3]> = truth_t
            .apply_all(&model)
            .into_iter()
            .map(|q| {
                let mut q = q;
                for v in q.iter_mut().take(dims.n()) {
                    *v += sigma * rng.sample::<f64, _>(StandardNormal);
                }
                q
            })
            .collect();
        // The user stood at the wrong spot for label 4: 3 m off.
        labels[4][0] += 2.4;
        labels[4][1] -= 1.8;
        let opts = AlignOptions {
            dims,
            ..AlignOptions::default()
        };
        let robust = align(&model, &labels, None, &opts).unwrap();
        let clean_idx: Vec<usize> = (0..10).filter(|&i| i != 4).collect();
        let clean = fit_rigid(
            &clean_idx.iter().map(|&i| model[i]).collect::<Vec<_>>(),
            &clean_idx.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
            None,
            dims,
            0.01,
        )
        .unwrap();
        let plain = align(
            &model,
            &labels,
            None,
            &AlignOptions {
                robust: false,
                ..opts.clone()
            },
        )
        .unwrap();
        let g_robust = max_transform_gap(&robust.transform, &truth_t, &probe);
        let g_clean = max_transform_gap(&clean.transform, &truth_t, &probe);
        let g_plain = max_transform_gap(&plain.transform, &truth_t, &probe);
        eprintln!("{dims} seed {seed}: robust {g_robust:.4} m, clean-9 {g_clean:.4} m, plain {g_plain:.4} m");
        assert!(!robust.inliers[4], "{dims}: the wrong label was kept");
        assert_eq!(robust.n_outliers(), 1);
        assert!(robust.residuals[4] > 2.5);
        // Same fit as if the wrong label had never been given, and within the label noise over a
        // 20 m × 15 m hall; the plain fit is pulled far beyond it (so this test can fail).
        assert!(
            (g_robust - g_clean).abs() < 1e-9,
            "{dims}: robust {g_robust} vs clean {g_clean}"
        );
        assert!(g_robust < 3.0 * sigma, "{dims}: {g_robust}");
        assert!(g_plain > 0.2, "{dims}: plain {g_plain}");
        let s = robust.sigma.unwrap();
        assert!(
            s > 0.4 * sigma && s < 2.0 * sigma,
            "{dims}: sigma estimate {s}"
        );
    }
}

#[test]
fn one_wrong_label_in_five_is_caught_in_2d() {
    let sigma = 0.02;
    let probe: Vec<[f64; 3]> = (0..100)
        .map(|i| [(i % 10) as f64 * 2.0, (i / 10) as f64 * 1.5, 1.2])
        .collect();
    let mut checked = 0;
    for seed in 0..10u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let truth_t = random_transform(
            Dims::Two,
            [0.3 * seed as f64, 0.0, 0.0, 0.0],
            [1.0, 2.0, 0.0],
            seed % 2 == 1,
        );
        let model = points(&mut rng, 5, Dims::Two);
        let mut labels: Vec<[f64; 3]> = truth_t
            .apply_all(&model)
            .into_iter()
            .map(|q| {
                [
                    q[0] + sigma * rng.sample::<f64, _>(StandardNormal),
                    q[1] + sigma * rng.sample::<f64, _>(StandardNormal),
                    q[2],
                ]
            })
            .collect();
        labels[(seed % 5) as usize][1] += 2.0;
        let a = match align(&model, &labels, None, &AlignOptions::default()) {
            Ok(a) => a,
            Err(AnchorError::Degenerate { .. }) => continue,
            Err(e) => panic!("{e}"),
        };
        assert!(
            !a.inliers[(seed % 5) as usize],
            "seed {seed}: {:?}",
            a.residuals
        );
        assert_eq!(a.transform.reflected, seed % 2 == 1);
        let g = max_transform_gap(&a.transform, &truth_t, &probe);
        assert!(g < 0.15, "seed {seed}: {g}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} of 10 draws were usable");
}

#[test]
fn degenerate_labels_give_typed_errors() {
    let opts2 = AlignOptions {
        dims: Dims::Two,
        ..AlignOptions::default()
    };
    let opts3 = AlignOptions {
        dims: Dims::Three,
        ..AlignOptions::default()
    };
    // Too few.
    let two = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]];
    assert!(matches!(
        align(&two, &two, None, &opts2),
        Err(AnchorError::TooFewLabels {
            got: 2,
            need: 3,
            ..
        })
    ));
    let three = [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
    assert!(matches!(
        align(&three, &three, None, &opts3),
        Err(AnchorError::TooFewLabels {
            got: 3,
            need: 4,
            ..
        })
    ));
    // A zero weight does not count.
    let four = [
        [0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0],
        [0.0, 1.0, 0.0],
        [3.0, 2.0, 0.0],
    ];
    assert!(matches!(
        align(&four, &four, Some(&[1.0, 1.0, 0.0, 0.0]), &opts2),
        Err(AnchorError::TooFewLabels { got: 2, .. })
    ));
    // Collinear in 2D (5 mm off a 10 m line), coplanar in 3D.
    let line: Vec<[f64; 3]> = (0..6)
        .map(|i| [i as f64 * 2.0, 1.0 + 0.005 * (i % 2) as f64, 0.0])
        .collect();
    let e = align(&line, &line, None, &opts2).unwrap_err();
    assert!(
        matches!(
            e,
            AnchorError::Degenerate {
                shape: "collinear",
                ..
            }
        ),
        "{e}"
    );
    let plane: Vec<[f64; 3]> = (0..8)
        .map(|i| [(i % 4) as f64, (i / 4) as f64 * 3.0, 1.2])
        .collect();
    let e = align(&plane, &plane, None, &opts3).unwrap_err();
    assert!(
        matches!(
            e,
            AnchorError::Degenerate {
                shape: "coplanar",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("--dims 2"));
    // The same plane is fine in 2D; model positions collinear while labels are not: still an error.
    assert!(align(&plane, &plane, None, &opts2).is_ok());
    let mut model_line = line.clone();
    model_line.truncate(4);
    let spots = [
        [0.0, 0.0, 0.0],
        [5.0, 0.0, 0.0],
        [0.0, 4.0, 0.0],
        [5.0, 4.0, 0.0],
    ];
    assert!(matches!(
        align(&model_line, &spots, None, &opts2),
        Err(AnchorError::Degenerate {
            which: "model positions of the labels",
            ..
        })
    ));
    // Bad numbers.
    let mut nan = four;
    nan[2][1] = f64::NAN;
    assert!(matches!(
        align(&nan, &four, None, &opts2),
        Err(AnchorError::NonFinite { index: 2, .. })
    ));
    assert!(matches!(
        align(&four, &four, Some(&[1.0, -1.0, 1.0, 1.0]), &opts2),
        Err(AnchorError::InvalidWeight { index: 1, .. })
    ));
    assert!(matches!(
        align(&four, &four[..3], None, &opts2),
        Err(AnchorError::LengthMismatch { .. })
    ));
}

#[test]
fn weights_pull_the_fit_towards_trusted_labels() {
    // Four exact labels and one 1 m off: with weight 1e-6 on the bad one the plain weighted fit
    // is exact on the others.
    let model = [
        [0.0, 0.0, 0.0],
        [10.0, 0.0, 0.0],
        [0.0, 8.0, 0.0],
        [10.0, 8.0, 0.0],
        [5.0, 4.0, 0.0],
    ];
    let mut labels = model;
    labels[4][0] += 1.0;
    let opts = AlignOptions {
        robust: false,
        ..AlignOptions::default()
    };
    let a = align(&model, &labels, Some(&[1.0, 1.0, 1.0, 1.0, 1e-6]), &opts).unwrap();
    assert!(
        a.residuals[..4].iter().all(|&r| r < 1e-5),
        "{:?}",
        a.residuals
    );
    let b = align(&model, &labels, None, &opts).unwrap();
    assert!(b.residuals[0] > 0.05);
}

#[test]
fn height_offset_in_2d_and_other_handedness_gap() {
    // 2D model at z = 0, labels at 1.2 m: the 2D fit lifts z and reports a clear handedness gap.
    let model = [
        [0.0, 0.0, 0.0],
        [10.0, 0.0, 0.0],
        [0.0, 8.0, 0.0],
        [7.0, 6.0, 0.0],
    ];
    let labels: Vec<[f64; 3]> = model
        .iter()
        .map(|p| [p[1] + 2.0, p[0] - 1.0, 1.2])
        .collect(); // a mirror
    let a = align(&model, &labels, None, &AlignOptions::default()).unwrap();
    assert!(a.transform.reflected);
    assert!((a.transform.apply([3.0, 3.0, 0.0])[2] - 1.2).abs() < 1e-12);
    assert!(a.other_handedness_rms > 1.0 && a.rms < 1e-9);
    assert_eq!(a.handedness_warning(), None, "a clear gap: no warning");
}

#[test]
fn labels_near_a_line_warn_that_the_reflection_is_weakly_determined() {
    // Four labels close to one line (1.5 m off it over 30 m) with about a metre of error, as
    // the model's positions have: the mirrored fit is about as good as the right one.
    let model = [
        [0.0, 0.0, 0.0],
        [10.0, 1.5, 0.0],
        [20.0, -1.5, 0.0],
        [30.0, 1.2, 0.0],
    ];
    let noise = [[0.9, -1.0], [-0.8, -1.1], [0.7, 1.2], [-0.9, -0.9]];
    let labels: Vec<[f64; 3]> = model
        .iter()
        .zip(noise)
        .map(|(p, e)| [p[0] + e[0], p[1] + e[1], 0.0])
        .collect();
    let a = align(&model, &labels, None, &AlignOptions::default()).unwrap();
    let w = a.handedness_warning().expect("a weak gap must warn");
    assert!(w.contains("mirrored") && !w.contains("  "), "{w}");
    // the same labels with a fifth far off the line decide it: no warning
    let mut model5 = model.to_vec();
    model5.push([15.0, 12.0, 0.0]);
    let mut labels5 = labels.clone();
    labels5.push([15.1, 11.9, 0.0]);
    let b = align(&model5, &labels5, None, &AlignOptions::default()).unwrap();
    assert!(b.other_handedness_rms > 2.0 * b.rms, "{b:?}");
    assert_eq!(b.handedness_warning(), None);
}

#[test]
fn a_label_set_aside_among_few_warns() {
    // five labels, one of them 2 m off: the robust fit sets it aside, and with only d + 2 = 4
    // left the reflection rests on fewer points than it should
    let model = [
        [0.0, 0.0, 0.0],
        [12.0, 1.0, 0.0],
        [3.0, 9.0, 0.0],
        [14.0, 11.0, 0.0],
        [7.0, 5.0, 0.0],
    ];
    let mut labels: Vec<[f64; 3]> = model
        .iter()
        .map(|p| [p[0] + 1.0, p[1] - 2.0, 0.0])
        .collect();
    labels[4][1] += 2.0;
    let a = align(&model, &labels, None, &AlignOptions::default()).unwrap();
    assert_eq!(a.n_outliers(), 1, "{a:?}");
    let w = a
        .handedness_warning()
        .expect("one of five set aside must warn");
    assert!(w.contains("set aside") && !w.contains("  "), "{w}");
}

#[test]
fn transform_variance_matches_monte_carlo() {
    // Label noise σ on 6 labels; predicted per-axis variance of T(p) at probe points vs the
    // empirical variance over 4000 noisy refits.
    let sigma = 0.05;
    for dims in [Dims::Two, Dims::Three] {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let model = points(&mut rng, 6, dims);
        let truth_t = random_transform(dims, [0.3, 0.1, 0.5, -0.2], [1.0, 2.0, 0.0], true);
        let clean = truth_t.apply_all(&model);
        let probes = [[10.0, 7.5, 1.2], [30.0, -10.0, 4.0], [-5.0, 20.0, 0.0]];
        let opts = AlignOptions {
            dims,
            robust: false,
            ..AlignOptions::default()
        };
        let reference = align(&model, &clean, None, &opts).unwrap();
        let n = 4000;
        let mut sum2 = [0.0; 3];
        for _ in 0..n {
            let noisy: Vec<[f64; 3]> = clean
                .iter()
                .map(|q| {
                    let mut q = *q;
                    for v in q.iter_mut().take(dims.n()) {
                        *v += sigma * rng.sample::<f64, _>(StandardNormal);
                    }
                    q
                })
                .collect();
            let a = align(&model, &noisy, None, &opts).unwrap();
            for (j, &p) in probes.iter().enumerate() {
                let (x, y) = (a.transform.apply(p), truth_t.apply(p));
                sum2[j] +=
                    (0..dims.n()).map(|k| (x[k] - y[k]).powi(2)).sum::<f64>() / dims.n() as f64;
            }
        }
        for (j, &p) in probes.iter().enumerate() {
            let mc = sum2[j] / n as f64;
            let pred = reference.transform_variance_at(p, sigma);
            eprintln!("{dims} probe {j}: predicted {pred:.3e} Monte Carlo {mc:.3e}");
            assert!(
                (pred / mc - 1.0).abs() < 0.1,
                "{dims} probe {j}: predicted {pred} MC {mc}"
            );
        }
    }
}

#[test]
fn predictive_sigma_of_other_positions_of_the_labels() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let t = random_transform(Dims::Two, [0.7, 0.0, 0.0, 0.0], [3.0, -2.0, 0.0], true);
    let model: Vec<[f64; 3]> = (0..10)
        .map(|i| [f64::from(i) * 2.0, (f64::from(i) * 1.3).sin() * 6.0, 0.0])
        .collect();
    let truth: Vec<[f64; 3]> = model
        .iter()
        .map(|p| {
            let q = t.apply(*p);
            let (dx, dy): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
            [q[0] + 0.1 * dx, q[1] + 0.1 * dy, 0.0]
        })
        .collect();
    let a = align(&model, &truth, None, &AlignOptions::default()).unwrap();
    assert_eq!(a.n_outliers(), 0);
    // the fit's own positions: the fit's predictive σ
    let own = a.predictive_sigma_of(&model, &truth).unwrap();
    assert!(
        (own - a.predictive_sigma()).abs() < 1e-9 * own,
        "{own} vs {}",
        a.predictive_sigma()
    );
    // positions 0.5 m off in x and y: about 0.5·√(2n/dof) per axis, widened
    let moved: Vec<[f64; 3]> = model
        .iter()
        .map(|p| [p[0] + 0.5, p[1] - 0.5, 0.0])
        .collect();
    let other = a.predictive_sigma_of(&moved, &truth).unwrap();
    assert!(other > 0.5 && other < 1.2, "{other}");
    // positions of other frames than the labels: refused
    assert_eq!(a.predictive_sigma_of(&model[..9], &truth[..9]), None);

    // a label 30 m wrong is set aside by the fit but still counts here
    let mut wrong = truth.clone();
    wrong[4][0] += 30.0;
    let b = align(&model, &wrong, None, &AlignOptions::default()).unwrap();
    assert_eq!(b.n_outliers(), 1);
    assert!(b.predictive_sigma() < 0.3, "{}", b.predictive_sigma());
    let with_it = b.predictive_sigma_of(&model, &wrong).unwrap();
    assert!(with_it > 30.0 / (17.0_f64).sqrt(), "{with_it}");
}
