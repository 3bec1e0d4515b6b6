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
