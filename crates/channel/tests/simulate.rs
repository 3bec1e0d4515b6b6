//! End-to-end checks of scenarios and the simulator.

use num_complex::Complex64;
use rfloc_channel::{bundled, simulate, ChannelError, Scenario, TonePlan, BUNDLED, SPEED_OF_LIGHT};

#[test]
fn every_bundled_scenario_parses_and_simulates() {
    for (name, text) in BUNDLED {
        let s = Scenario::from_toml_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&s.name, name);
        let ds = simulate(&s, 1, Some(30)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ds.n_frames(), 30);
        assert_eq!(ds.n_receivers(), s.scene.receivers.len());
        assert_eq!(ds.n_subcarriers(), s.plan.len());
        assert!(ds.csi.iter().all(|x| x.re.is_finite() && x.im.is_finite()));
        assert!(ds.csi.iter().any(|x| x.norm() > 0.0));
    }
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let s = Scenario::from_toml_str(bundled("office").unwrap()).unwrap();
    let a = simulate(&s, 7, Some(40)).unwrap();
    let b = simulate(&s, 7, Some(40)).unwrap();
    let c = simulate(&s, 8, Some(40)).unwrap();
    // (Dataset's PartialEq sees NaN padding as unequal: compare arrays bit for bit)
    assert_eq!(a.csi, b.csi);
    assert_eq!(a.meta, b.meta);
    assert_eq!(a.truth.positions, b.truth.positions);
    let bits = |d: &rfloc_csi::dataset::Dataset| -> Vec<u64> {
        d.truth
            .paths_delay_s
            .as_ref()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(a.truth.paths_gain, b.truth.paths_gain);
    assert_ne!(a.csi, c.csi);
    assert_ne!(a.truth.positions, c.truth.positions);
}

/// Scenario with everything random switched off: the CSI must equal the direct sum
/// `Σ_p α_p e^{−j2π(f_c+f_k)τ_p}` over the ground-truth paths (sin/cos per term), and the first
/// truth path of a line-of-sight link must have delay |x − r|/c.
#[test]
fn csi_equals_direct_sum_over_truth_paths() {
    let text = bundled("factory-a")
        .unwrap()
        .replace("truth_paths = 24", "truth_paths = 400")
        .replace("[noise]\n", "[noise]\nenabled = false\n")
        .replace(
            "receiver_delay_max_s = 40e-9",
            "receiver_delay_max_s = 0.0\nreceiver_phase = false",
        )
        .replace("paths = 20\n", "paths = 0\n");
    let s = Scenario::from_toml_str(&text).unwrap();
    assert!(s.noise.snr_db_per_subcarrier.is_none() && s.diffuse.paths == 0);
    let ds = simulate(&s, 3, Some(150)).unwrap();
    let plan = TonePlan::new(ds.meta.carrier_hz, ds.meta.subcarrier_offsets_hz.clone()).unwrap();
    let delays = ds.truth.paths_delay_s.as_ref().unwrap();
    let gains = ds.truth.paths_gain.as_ref().unwrap();
    let pos = ds.truth.positions.as_ref().unwrap();
    let mut los_links = 0;
    for n in 0..ds.n_frames() {
        for r in 0..ds.n_receivers() {
            let mut d = Vec::new();
            let mut g = Vec::new();
            for p in 0..delays.dim().2 {
                if delays[[n, r, p]].is_finite() {
                    d.push(delays[[n, r, p]]);
                    let x = gains[[n, r, p]];
                    g.push(Complex64::new(x.re as f64, x.im as f64));
                }
            }
            assert!(d.len() < 400, "truth_paths too small to hold every path");
            let mut h = vec![Complex64::new(0.0, 0.0); plan.len()];
            plan.synthesize_direct(&d, &g, true, &mut h);
            let scale: f64 = g.iter().map(|x| x.norm()).sum::<f64>().max(1e-30);
            for k in 0..plan.len() {
                let y = ds.csi[[n, r, 0, k]];
                let err = (Complex64::new(y.re as f64, y.im as f64) - h[k]).norm();
                assert!(
                    err < 2e-6 * scale,
                    "frame {n} rx {r} tone {k}: err {err}, scale {scale}"
                );
            }
            let rp = ds.meta.receivers[r].position.unwrap();
            let dist = ((pos[[n, 0]] - rp[0]).powi(2)
                + (pos[[n, 1]] - rp[1]).powi(2)
                + (pos[[n, 2]] - rp[2]).powi(2))
            .sqrt();
            if d.first()
                .is_some_and(|t| (t * SPEED_OF_LIGHT - dist).abs() < 1e-9)
            {
                los_links += 1;
            }
            if let Some(first) = d.first() {
                assert!(first * SPEED_OF_LIGHT >= dist - 1e-9);
            }
        }
    }
    eprintln!("line-of-sight links: {los_links} of {}", 4 * ds.n_frames());
    assert!(los_links > 60, "{los_links}");
}

/// The noise floor is calibrated: the median link's mean per-subcarrier SNR is the target.
#[test]
fn median_snr_matches_the_scenario() {
    let s = Scenario::from_toml_str(bundled("factory-hall").unwrap()).unwrap();
    let ds = simulate(&s, 5, Some(200)).unwrap();
    let nv = ds.meta.noise.as_ref().unwrap()["noise_variance"]
        .as_f64()
        .unwrap();
    let (n, r, a, k) = ds.csi.dim();
    let mut snr = Vec::new();
    for f in 0..n {
        for rr in 0..r {
            for aa in 0..a {
                let p: f64 = (0..k)
                    .map(|kk| ds.csi[[f, rr, aa, kk]].norm_sqr() as f64)
                    .sum::<f64>()
                    / k as f64;
                snr.push(10.0 * ((p - nv).max(1e-30) / nv).log10());
            }
        }
    }
    snr.sort_by(f64::total_cmp);
    let med = snr[snr.len() / 2];
    assert!((med - 25.0).abs() < 0.5, "median SNR {med} dB");
}

#[test]
fn bad_scenarios_give_located_errors() {
    let good = bundled("single-receiver").unwrap();
    // a syntax error on a known line
    let bad = good.replacen("[hall]", "[hall\n", 1);
    let line = bad.lines().position(|l| l.starts_with("[hall")).unwrap() + 1;
    match Scenario::from_toml_str(&bad) {
        Err(ChannelError::Toml { line: l, .. }) => assert_eq!(l, line),
        other => panic!("{other:?}"),
    }
    // unknown material
    let bad = good.replacen("material = \"metal\"", "material = \"unobtainium\"", 1);
    match Scenario::from_toml_str(&bad) {
        Err(ChannelError::Invalid { field, message }) => {
            assert!(field.contains("obstacles[0]"), "{field}");
            assert!(message.contains("unobtainium"));
        }
        other => panic!("{other:?}"),
    }
    // an unknown ITU material names the material
    let bad = good.replacen("{ itu = \"metal\" }", "{ itu = \"cheese\" }", 1);
    match Scenario::from_toml_str(&bad) {
        Err(ChannelError::Invalid { field, message }) => {
            assert_eq!(field, "materials.metal");
            assert!(message.contains("cheese"));
        }
        other => panic!("{other:?}"),
    }
    // a typo in a key is an error, not silently ignored
    assert!(Scenario::from_toml_str(&good.replacen("max_order", "max_ordre", 1)).is_err());
    // receiver inside an obstacle
    let bad = good.replacen(
        "position = [0.4, 6.0, 3.0]",
        "position = [6.0, 6.0, 1.0]",
        1,
    );
    assert!(matches!(
        Scenario::from_toml_str(&bad),
        Err(ChannelError::Invalid { .. })
    ));
    // an aisle through a machine
    let bad = good.replacen("[10.0, 9.0]", "[10.0, 6.0]", 1);
    assert!(matches!(
        Scenario::from_toml_str(&bad),
        Err(ChannelError::Invalid { .. })
    ));
}

/// Commodity mode: per-frame random phase makes the same position's CSI differ between frames,
/// while the delay structure (|H| up to the AGC gain) is kept.
#[test]
fn commodity_impairments_change_phase_not_magnitude_profile() {
    let text = bundled("office")
        .unwrap()
        .replace("[noise]\n", "[noise]\nenabled = false\n")
        .replace("paths = 20\n", "paths = 0\n")
        .replace(
            "kind = \"walks\"",
            "kind = \"points\"\npoints = [[8.0, 5.2, 1.1], [8.0, 5.2, 1.1]]",
        );
    let text: String = text
        .lines()
        .filter(|l| {
            ![
                "tracks",
                "track_duration_s",
                "waypoints",
                "aisles",
                "height_variation_m",
                "  [",
                "]",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let s = Scenario::from_toml_str(&text).unwrap();
    let ds = simulate(&s, 11, None).unwrap();
    assert_eq!(ds.n_frames(), 2);
    let k = ds.n_subcarriers();
    let a: Vec<_> = (0..k).map(|i| ds.csi[[0, 0, 0, i]]).collect();
    let b: Vec<_> = (0..k).map(|i| ds.csi[[1, 0, 0, i]]).collect();
    assert!(a
        .iter()
        .zip(&b)
        .any(|(x, y)| (x - y).norm() > 1e-3 * x.norm()));
    // |H[k]| profiles agree up to one gain factor
    let ratio: Vec<f32> = a.iter().zip(&b).map(|(x, y)| y.norm() / x.norm()).collect();
    for r in &ratio {
        assert!((r / ratio[0] - 1.0).abs() < 1e-3);
    }
}

/// `Dataset::write` of two simulations with the same seed gives the same bytes in every file.
#[test]
fn same_seed_same_bytes_on_disk() {
    let s = Scenario::from_toml_str(bundled("single-receiver").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    simulate(&s, 42, Some(50)).unwrap().write(&a).unwrap();
    simulate(&s, 42, Some(50)).unwrap().write(&b).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for n in names {
        assert_eq!(
            std::fs::read(a.join(&n)).unwrap(),
            std::fs::read(b.join(&n)).unwrap(),
            "{n:?}"
        );
    }
    // and the written dataset reads back with its ground truth
    let back = rfloc_csi::dataset::Dataset::read(&a).unwrap();
    assert_eq!(back.n_frames(), 50);
    assert!(back.truth.paths_delay_s.is_some());
}

/// The bound from a dataset's ground truth (LoS paths found by delay) equals the bound computed
/// from the scenario's geometry for the same frames.
#[test]
fn dataset_and_scenario_bounds_agree() {
    let s = Scenario::from_toml_str(bundled("factory-a").unwrap()).unwrap();
    let opts = rfloc_channel::PebOptions {
        paths: rfloc_channel::PebPaths::LineOfSight,
        dims: 2,
    };
    let (ds, from_scenario) = rfloc_channel::peb_per_frame(&s, 9, Some(300), opts).unwrap();
    let from_dataset = rfloc_channel::peb_from_dataset(&ds, 2).unwrap();
    let mut finite = 0;
    for (a, b) in from_scenario.iter().zip(&from_dataset) {
        if a.is_finite() {
            finite += 1;
            assert!((a - b).abs() < 1e-5 * a, "{a} vs {b}");
        } else {
            assert!(b.is_infinite());
        }
    }
    assert!(finite > 100, "{finite}");
    // with reflections the bound can only improve
    let opts = rfloc_channel::PebOptions {
        paths: rfloc_channel::PebPaths::Resolvable,
        dims: 2,
    };
    let (_, with_refl) = rfloc_channel::peb_per_frame(&s, 9, Some(300), opts).unwrap();
    for (a, b) in from_scenario.iter().zip(&with_refl) {
        assert!(*b <= *a * (1.0 + 1e-9));
    }
}

/// The interfering-paths bound on factory-a frames: knowing the amplitudes can only lower it,
/// the dense multipath and an unknown receiver clock can only raise it, and paths that overlap in delay leave it far above the
/// bound that treats every path as alone.
#[test]
fn interfering_bound_orders_as_the_knowledge_does() {
    use rfloc_channel::{GainKnowledge, PebOptions, PebPaths, Unknowns};
    let with = |gains, clock_offset| {
        PebPaths::Interfering(Unknowns {
            gains,
            clock_offset,
        })
    };
    let s = Scenario::from_toml_str(bundled("factory-a").unwrap()).unwrap();
    let mut no_dense = s.clone();
    no_dense.diffuse.paths = 0;
    let run = |sc: &Scenario, paths| {
        rfloc_channel::peb_per_frame(sc, 4, Some(40), PebOptions { paths, dims: 2 })
            .unwrap()
            .1
    };
    let unknown = run(&s, with(GainKnowledge::Unknown, false));
    let amplitudes = run(&s, with(GainKnowledge::PhaseUnknown, false));
    let white = run(&no_dense, with(GainKnowledge::Unknown, false));
    let no_clock = run(&s, with(GainKnowledge::Unknown, true));
    let alone = run(&s, PebPaths::Resolvable);
    for i in 0..unknown.len() {
        assert!(unknown[i].is_finite(), "frame {i}");
        assert!(amplitudes[i] <= unknown[i] * (1.0 + 1e-9), "frame {i}");
        assert!(white[i] <= unknown[i] * (1.0 + 1e-9), "frame {i}");
        assert!(no_clock[i] >= unknown[i] * (1.0 - 1e-9), "frame {i}");
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    assert!(
        median(&unknown) > 5.0 * median(&alone),
        "{} vs {}",
        median(&unknown),
        median(&alone)
    );
}

/// The walls' map structure reproduces every virtual anchor: with `θ` the true receiver
/// positions and face offsets (`d = n·p` on the face), `T θ` is each anchor's position (the images
/// are linear in both, so this checks every reflection's Jacobian, order 2 included), and the
/// translations it names move every anchor alike.
#[test]
fn the_wall_structure_rebuilds_every_anchor() {
    let s = Scenario::from_toml_str(bundled("factory-hall").unwrap()).unwrap();
    let model = rfloc_channel::ChannelModel::new(&s);
    let st = model.wall_structure(2);
    let anchors = model.anchor_positions();
    assert_eq!(st.jacobian.len(), 3 * anchors.len());
    let scene = &s.scene;
    assert!(scene
        .receivers
        .iter()
        .all(|r| r.antenna_offsets.iter().all(|o| *o == [0.0; 3])));
    let mut theta = vec![0.0; st.parameters];
    for (r, rx) in scene.receivers.iter().enumerate() {
        theta[3 * r..3 * r + 3].copy_from_slice(&rx.position);
    }
    for (f, face) in scene.faces.iter().enumerate() {
        let n = face.normal;
        theta[3 * scene.receivers.len() + f] =
            n[0] * face.origin[0] + n[1] * face.origin[1] + n[2] * face.origin[2];
    }
    let mut second_order = 0;
    for (a, v) in anchors.iter().enumerate() {
        for axis in 0..3 {
            let got: f64 = st.jacobian[3 * a + axis]
                .iter()
                .map(|&(k, x)| x * theta[k])
                .sum();
            assert!(
                (got - v[axis]).abs() < 1e-9,
                "anchor {a} axis {axis}: {got} vs {}",
                v[axis]
            );
        }
        let mut faces: Vec<usize> = (0..3)
            .flat_map(|axis| st.jacobian[3 * a + axis].iter().map(|&(k, _)| k))
            .filter(|&k| k >= 3 * scene.receivers.len())
            .collect();
        faces.sort_unstable();
        faces.dedup();
        second_order += usize::from(faces.len() >= 2);
    }
    assert!(second_order > 0, "no second-order image checked");
    for g in &st.gauge {
        for a in 0..anchors.len() {
            let moved: Vec<f64> = (0..3)
                .map(|axis| {
                    st.jacobian[3 * a + axis]
                        .iter()
                        .map(|&(k, x)| x * g[k])
                        .sum()
                })
                .collect();
            let d: Vec<f64> = (0..2).map(|i| g[i]).collect(); // receiver 0's move = the translation
            assert!(
                (moved[0] - d[0]).abs() < 1e-12
                    && (moved[1] - d[1]).abs() < 1e-12
                    && moved[2].abs() < 1e-12,
                "anchor {a}: {moved:?}"
            );
        }
    }
}
