//! One module per subcommand: `Args` (clap) and `run(args) -> anyhow::Result<()>`.
// @@modules (one `pub mod name;` per subcommand; keep this marker)
pub mod anchor;
pub mod baseline;
pub mod convert;
pub mod crlb;
pub mod demo;
pub mod eval;
pub mod eval_labels;
pub mod eval_map;
pub mod inspect;
pub mod labels;
pub mod locate;
pub mod paths;
pub mod plot;
pub mod report;
pub mod simulate;
pub mod train;

/// Opens a training's checkpoint directory ([`rfloc_learn::checkpoint`]) and says, for the user,
/// what was found there.
pub fn open_checkpoints(
    dir: &std::path::Path,
    ds: &rfloc_csi::dataset::Dataset,
    cfg: &rfloc_learn::TrainConfig,
    labels: &[(usize, [f64; 3])],
) -> anyhow::Result<(rfloc_learn::checkpoint::Checkpoints, String)> {
    use anyhow::Context;
    use rfloc_learn::checkpoint::{Checkpoints, Opened};
    let (ck, opened) = Checkpoints::open(dir, ds, cfg, labels)
        .with_context(|| format!("opening the checkpoints in {}", dir.display()))?;
    let said = match opened {
        Opened::Fresh => format!(
            "checkpoints go to {} (if training stops, the same command resumes there)",
            dir.display()
        ),
        Opened::Resuming => format!("resuming from the checkpoints in {}", dir.display()),
        Opened::Discarded(why) => format!(
            "cleared the checkpoints in {} ({why}); training from the start",
            dir.display()
        ),
    };
    Ok((ck, said))
}

/// Removes a training's checkpoints once its model is written; a failure only costs disk space,
/// so it is a warning.
pub fn remove_checkpoints(ck: rfloc_learn::checkpoint::Checkpoints) {
    let dir = ck.dir().to_path_buf();
    if let Err(e) = ck.remove() {
        eprintln!(
            "warning: could not remove the checkpoints in {}: {e}",
            dir.display()
        );
    }
}
