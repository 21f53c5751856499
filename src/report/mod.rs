//! Output: progress bars, JSONL training logs, cached step results, tables, plots.
pub mod cache;
pub mod folder;
pub mod jsonl;
pub mod plot;
pub mod progress;
pub mod table;
