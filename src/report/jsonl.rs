//! Per-epoch JSONL logs: one JSON object a line, each with an `epoch` field.
use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
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

/// Every record of a log, read back as its type. An absent log has none (the run has not
/// finished an epoch); a log that cannot be read, or a line that is not a `T`, is an error
/// naming the file and line, so that a renamed field does not silently empty a plot.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                Error::invalid(
                    "log",
                    format!("{} line {}: not a log record: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

/// The field every training log's record has, whatever its type.
#[derive(Deserialize)]
struct EpochOf {
    epoch: usize,
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
            serde_json::from_str::<EpochOf>(line).is_ok_and(|record| record.epoch <= last_epoch)
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

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Line {
        epoch: usize,
        loss: f64,
    }

    #[test]
    fn reads_records_as_their_type_and_names_a_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        assert!(read::<Line>(&path).unwrap().is_empty(), "an absent log");
        append(&path, &serde_json::json!({ "epoch": 1, "loss": 0.5 })).unwrap();
        assert_eq!(
            read::<Line>(&path).unwrap(),
            vec![Line {
                epoch: 1,
                loss: 0.5
            }]
        );
        append(&path, &serde_json::json!({ "epoch": 2, "renamed": 0.25 })).unwrap();
        let message = read::<Line>(&path).unwrap_err().to_string();
        assert!(
            message.contains("log.jsonl line 2") && message.contains("loss"),
            "{message}"
        );
    }
}
