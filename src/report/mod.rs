//! Output: progress bars, JSONL training logs, tables, plots.
pub mod jsonl;
pub mod plot;
pub mod progress;
pub mod table;
