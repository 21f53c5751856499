//! Output: progress bars, JSONL training logs, tables.
pub mod jsonl;
pub mod progress;
pub mod table;
