//! One module per subcommand: `Args` (clap) and `run(args) -> anyhow::Result<()>`.
// @@modules (one `pub mod name;` per subcommand; keep this marker)
pub mod train;
pub mod locate;
pub mod eval_map;
pub mod anchor;
pub mod demo;
pub mod eval_labels;
pub mod report;
pub mod paths;
pub mod baseline;
pub mod simulate;
pub mod crlb;
pub mod plot;
pub mod convert;
pub mod inspect;
pub mod eval;
pub mod labels;
