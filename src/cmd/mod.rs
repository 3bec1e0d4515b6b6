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

/// "members 1–2 of 5, round 2 of 2": which ensemble members are training (progress lines of
/// `rfloc train` and `rfloc anchor --fine-tune`).
pub fn members_line(
    index: usize,
    last: usize,
    total: usize,
    round: usize,
    rounds: usize,
) -> String {
    let who = if last > index {
        format!("members {}–{} of {total}", index + 1, last + 1)
    } else {
        format!("member {} of {total}", index + 1)
    };
    if rounds > 1 {
        format!("{who}, round {round} of {rounds}")
    } else {
        who
    }
}

#[cfg(test)]
mod tests {
    use super::members_line;

    #[test]
    fn members_line_names_the_batch_and_the_round() {
        assert_eq!(
            members_line(0, 1, 5, 2, 2),
            "members 1–2 of 5, round 2 of 2"
        );
        assert_eq!(members_line(4, 4, 5, 1, 1), "member 5 of 5");
    }
}
