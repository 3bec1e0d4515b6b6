//! Writes `reports/channel-crosscheck.md`: rfloc's image-source model (scenarios/factory-a.toml)
//! against the ray-traced grid data set in `../shared/datasets/factory-a-grid-sync`.
//!
//! `cargo run --release -p rfloc-channel --example crosscheck`

#[path = "../tests/common/crosscheck.rs"]
mod crosscheck;

fn main() -> Result<(), String> {
    let Some(dir) = crosscheck::shared_grid_dir() else {
        eprintln!("skipped: ../shared not found");
        return Ok(());
    };
    let c = crosscheck::run(&dir)?;
    let md = c.markdown("cargo run --release -p rfloc-channel --example crosscheck");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../reports/channel-crosscheck.md");
    std::fs::write(&out, &md).map_err(|e| format!("{}: {e}", out.display()))?;
    print!("{md}");
    Ok(())
}
