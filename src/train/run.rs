//! What every training run shares: its files, resuming at an epoch boundary, the per-epoch
//! state checkpoint, and keeping the checkpoint chosen by a validation score.
use super::adam::Adam;
use crate::checkpoint::{self, CheckpointInfo};
use crate::error::{Error, Result};
use crate::report::jsonl;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

const MODEL_PREFIX: &str = "model.";
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Files of a run directory.
pub struct RunFiles {
    /// The weights chosen on the validation split (for evaluation and downstream use).
    pub best: PathBuf,
    /// Everything needed to resume: weights, optimizer state, epoch, best so far.
    pub resume: PathBuf,
    pub log: PathBuf,
}

impl RunFiles {
    pub fn new(out_dir: &Path) -> Self {
        Self {
            best: out_dir.join("model.safetensors"),
            resume: out_dir.join("resume.safetensors"),
            log: out_dir.join("log.jsonl"),
        }
    }
}

/// Where a run stands: epochs done and the best validation score so far.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub epochs_done: usize,
    pub best_epoch: usize,
    pub best_score: f64,
}

/// A run's configuration with its epoch count removed: resuming may extend the epochs but
/// must otherwise continue the same experiment.
fn without_epochs(config: &serde_json::Value) -> serde_json::Value {
    let mut config = config.clone();
    if let Some(map) = config.as_object_mut() {
        map.remove("epochs");
    }
    config
}

/// Starts a run in `out_dir`, or with `resume` continues it from its state checkpoint (when one
/// exists): checks it is the same experiment, restores weights and optimizer, and trims the log.
pub fn start(
    files: &RunFiles,
    out_dir: &Path,
    info: &CheckpointInfo,
    vs: &VarStore,
    adam: &mut Adam,
    resume: bool,
) -> Result<Progress> {
    let fresh = Progress {
        epochs_done: 0,
        best_epoch: 0,
        best_score: f64::NEG_INFINITY,
    };
    if !(resume && files.resume.is_file()) {
        std::fs::create_dir_all(out_dir)
            .map_err(|e| Error::io(format!("cannot create {}", out_dir.display()), e))?;
        let _ = std::fs::remove_file(&files.log);
        return Ok(fresh);
    }
    let (saved, tensors) = checkpoint::read(&files.resume)?;
    if saved.model != info.model || without_epochs(&saved.config) != without_epochs(&info.config) {
        return Err(Error::checkpoint(
            &files.resume,
            format!(
                "was written by a different run ({}); --resume needs the same settings, or choose another --out",
                saved.config
            ),
        ));
    }
    checkpoint::load_into(vs, "", &tensors, MODEL_PREFIX, &files.resume)?;
    adam.load_state(&tensors, OPTIMIZER_PREFIX)?;
    jsonl::truncate_after(&files.log, saved.epoch)?;
    eprintln!(
        "resuming from {} after epoch {}",
        files.resume.display(),
        saved.epoch
    );
    Ok(Progress {
        epochs_done: saved.epoch,
        best_epoch: saved.metrics["best_epoch"].as_u64().unwrap_or(0) as usize,
        best_score: saved.metrics["best_score"]
            .as_f64()
            .unwrap_or(f64::NEG_INFINITY),
    })
}

/// Ends an epoch: appends its log record, saves the weights as the chosen checkpoint when
/// `score` beats the best so far (`None` always replaces it: "keep the last"), then writes the
/// state checkpoint. Returns the updated progress.
pub fn finish_epoch(
    files: &RunFiles,
    info: &CheckpointInfo,
    vs: &VarStore,
    adam: &Adam,
    mut progress: Progress,
    score: Option<f64>,
    record: &impl Serialize,
) -> Result<Progress> {
    jsonl::append(&files.log, record)?;
    let epoch = info.epoch;
    let improved = score.is_none_or(|s| s > progress.best_score);
    if improved {
        progress.best_score = score.unwrap_or(f64::NAN);
        progress.best_epoch = epoch;
        checkpoint::save_model(&files.best, vs, info)?;
    }
    progress.epochs_done = epoch;
    let state: Vec<_> = checkpoint::named_variables(vs)
        .into_iter()
        .map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), t))
        .chain(
            adam.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)),
        )
        .collect();
    let state_info = CheckpointInfo {
        metrics: serde_json::json!({ "best_epoch": progress.best_epoch, "best_score": progress.best_score }),
        ..info.clone()
    };
    checkpoint::save(&files.resume, &state, &state_info)?;
    Ok(progress)
}

/// Adds the epoch and step to a divergence error.
pub fn at_step(e: Error, epoch: usize, step: usize) -> Error {
    match e {
        Error::Diverged(m) => Error::Diverged(format!(
            "{m} at epoch {} step {step}; try a lower --lr",
            epoch + 1
        )),
        other => other,
    }
}
