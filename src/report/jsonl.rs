//! Per-epoch JSONL logs: one JSON object a line, each with an `epoch` field.
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

pub fn append(path: &Path, record: &impl serde::Serialize) -> Result<()> {
    let line = serde_json::to_string(record).map_err(|e| Error::invalid("log", e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    writeln!(file, "{line}").map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// Every record of a log (an absent log has none; unreadable lines are skipped).
pub fn read(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Keeps only the records of epochs up to `last_epoch`: after a resume, the log then matches
/// the checkpoint even if the run died between writing a line and its checkpoint.
pub fn truncate_after(path: &Path, last_epoch: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("epoch")?.as_u64())
                .is_some_and(|e| e as usize <= last_epoch)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_earlier_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        for epoch in 1..=3 {
            append(&path, &serde_json::json!({ "epoch": epoch })).unwrap();
        }
        truncate_after(&path, 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"epoch\":1}\n{\"epoch\":2}\n"
        );
    }
}
