//! Helpers shared by integration tests (and by the crosscheck example via `#[path]`).
pub mod crosscheck;
