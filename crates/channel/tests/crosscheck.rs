//! rfloc's image-source model against the independent ray tracer's factory-a grid data set
//! (goals of issue 3). Skipped when ../shared is absent. The report with the same numbers is
//! written by `cargo run --release -p rfloc-channel --example crosscheck`.

mod common;

#[test]
fn factory_a_matches_the_ray_tracer() {
    let Some(dir) = common::crosscheck::shared_grid_dir() else {
        eprintln!("skipped: ../shared not found");
        return;
    };
    let c = common::crosscheck::run(&dir).unwrap();
    eprintln!("{c:?}");
    assert_eq!(c.links, 3396);
    assert!(
        c.los_agreement_pct() >= 98.0,
        "LoS agreement {}",
        c.los_agreement_pct()
    );
    assert!(
        c.los_delay_err_max_s <= 1e-12,
        "LoS delay error {} s",
        c.los_delay_err_max_s
    );
    assert!(
        c.specular_found_pct() >= 90.0,
        "specular paths found {}",
        c.specular_found_pct()
    );
    assert_eq!(c.grid_points_same, c.grid_points_truth);
    // polarimetric Fresnel reflection with the ITU materials reproduces the ray tracer's gains
    assert!(
        c.gain_rel_err_median < 0.01,
        "gain error {}",
        c.gain_rel_err_median
    );
    assert!(c.markdown("test").contains("849 grid positions"));
}
