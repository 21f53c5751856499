//! What every training run shares: its files, resuming at an epoch boundary, the per-epoch
//! state checkpoint, and keeping the checkpoint chosen by a validation score.
use crate::checkpoint::{self, CheckpointInfo};
use crate::data::split::{self, TrainValidation};
use crate::data::{augment, batches::epoch_batches, Dataset};
use crate::error::{ensure_positive, ensure_positive_number, Error, Result};
use crate::folder_lock::FolderLock;
use crate::nn::{named_variables, Adam};
use crate::precision::{self, Precision};
use crate::report::jsonl;
use crate::report::progress;
use crate::seed::{self, Stream};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::nn::VarStore;
use tch::Tensor;

const MODEL_PREFIX: &str = "model.";
const OPTIMIZER_PREFIX: &str = "optimizer.";

/// The settings every training run has (defaults: SPEC §5). Runs flatten them into their
/// configuration, so the JSON keeps these keys at its top level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSettings {
    /// Epochs to train (the paper: 300).
    pub epochs: usize,
    /// Mini-batch size (128).
    pub batch_size: usize,
    /// Adam learning rate (1e-4).
    pub lr: f64,
    /// Fraction of the training set held out for model selection (0.1).
    pub val_fraction: f64,
    /// Seed of the validation split, shared by every run on a dataset so that their
    /// validation numbers compare (0).
    pub split_seed: u64,
    /// Train on the first N training examples only (all when `None`).
    pub train_limit: Option<usize>,
    /// Seed of initialisation, shuffling, augmentation, dropout and random starts.
    pub seed: u64,
    /// Arithmetic of the training steps (evaluation and estimates stay f32).
    #[serde(default, skip_serializing_if = "Precision::is_f32")]
    pub precision: Precision,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            epochs: 300,
            batch_size: 128,
            lr: 1e-4,
            val_fraction: 0.1,
            split_seed: 0,
            train_limit: None,
            seed: 0,
            precision: Precision::F32,
        }
    }
}

impl RunSettings {
    pub fn validate(&self) -> Result<()> {
        ensure_positive("epochs", self.epochs as i64)?;
        ensure_positive("batch_size", self.batch_size as i64)?;
        ensure_positive_number("lr", self.lr)?;
        if let Some(limit) = self.train_limit {
            ensure_positive("train_limit", limit as i64)?;
        }
        Ok(())
    }

    /// The training and validation parts of the first `train_limit` training examples. A
    /// training part smaller than one batch is refused: an epoch would take no step, and an
    /// untrained model would be saved as the result.
    pub fn split(&self, data: &Dataset) -> Result<TrainValidation> {
        let n_train = self
            .train_limit
            .map_or(data.train.len(), |l| (l as i64).min(data.train.len()));
        let parts = split::train_validation(n_train, self.val_fraction, self.split_seed)?;
        if parts.train.len() < self.batch_size {
            return Err(Error::invalid(
                "batch_size",
                format!(
                    "{} exceeds the {} training images left after holding out {} of {n_train} \
                     for validation; lower it or train on more images",
                    self.batch_size,
                    parts.train.len(),
                    parts.validation.len()
                ),
            ));
        }
        Ok(parts)
    }
}

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

/// Whether the run in `out_dir` has finished `epochs` epochs, as its state checkpoint's sidecar
/// records (written after the checkpoint). Read without the run's lock: steps of a reproduction
/// in separate processes that need one finished encoder would otherwise collide on that lock.
pub fn finished(out_dir: &Path, epochs: usize) -> bool {
    let sidecar = checkpoint::sidecar_path(&RunFiles::new(out_dir).resume);
    std::fs::read_to_string(sidecar)
        .ok()
        .and_then(|text| serde_json::from_str::<CheckpointInfo>(&text).ok())
        .is_some_and(|info| info.epoch >= epochs)
}

/// Where a run stands: epochs done and the best validation score so far.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub epochs_done: usize,
    pub best_epoch: usize,
    pub best_score: f64,
}

/// What a state checkpoint stores as its metrics: the epoch kept so far and its validation
/// score (`None` before any score, or when the run keeps its last epoch).
#[derive(Serialize, Deserialize)]
struct Selection {
    best_epoch: usize,
    best_score: Option<f64>,
}

/// The settings in which a saved run's configuration differs from this one's, as
/// `key: this here, that in the run` (nested keys dotted); the epoch count may differ
/// (resuming may extend it).
pub fn differing_settings(saved: &serde_json::Value, this: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_differences("", saved, this, &mut out);
    out
}

fn collect_differences(
    path: &str,
    saved: &serde_json::Value,
    this: &serde_json::Value,
    out: &mut Vec<String>,
) {
    let null = serde_json::Value::Null;
    match (saved.as_object(), this.as_object()) {
        (Some(saved), Some(this)) => {
            let mut keys: Vec<&String> = saved.keys().chain(this.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys
                .into_iter()
                .filter(|k| !(path.is_empty() && *k == "epochs"))
            {
                let nested = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let (a, b) = (
                    saved.get(key).unwrap_or(&null),
                    this.get(key).unwrap_or(&null),
                );
                collect_differences(&nested, a, b, out);
            }
        }
        _ if saved != this => {
            let name = if path.is_empty() {
                "configuration"
            } else {
                path
            };
            out.push(format!("{name}: {this} here, {saved} in the run"));
        }
        _ => {}
    }
}

/// Starts a run in `out_dir`, or with `resume` continues it from its state checkpoint (when one
/// exists): checks it is the same experiment, restores weights and optimizer, and trims the log.
/// `epochs` is the run's epoch count, which a resumed run may extend but not cut.
fn start(
    files: &RunFiles,
    out_dir: &Path,
    info: &CheckpointInfo,
    epochs: usize,
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
    let differences = differing_settings(&saved.config, &info.config);
    if saved.model != info.model || !differences.is_empty() {
        let what = if differences.is_empty() {
            format!(
                "model {} here, {} there",
                info.model.name(),
                saved.model.name()
            )
        } else {
            differences.join(", ")
        };
        return Err(Error::checkpoint(
            &files.resume,
            format!(
                "was written by a different run ({what}); resuming needs the same settings; or choose another folder"
            ),
        ));
    }
    if saved.epoch > epochs {
        return Err(Error::invalid(
            "epochs",
            format!(
                "{epochs} is fewer than the {} epochs {} has finished; its kept model is {}",
                saved.epoch,
                files.resume.display(),
                files.best.display()
            ),
        ));
    }
    let selection: Selection = serde_json::from_value(saved.metrics).map_err(|e| {
        Error::checkpoint(
            &files.resume,
            format!("does not record which epoch the run keeps ({e})"),
        )
    })?;
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
        best_epoch: selection.best_epoch,
        best_score: selection.best_score.unwrap_or(f64::NEG_INFINITY),
    })
}

/// Ends an epoch: appends its log record, saves the weights as the chosen checkpoint when
/// `score` beats the best so far (`None` always replaces it: "keep the last"), then writes the
/// state checkpoint. Returns the updated progress.
fn finish_epoch(
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
    let state: Vec<_> = named_variables(vs)
        .into_iter()
        .map(|(n, t)| (format!("{MODEL_PREFIX}{n}"), t))
        .chain(
            adam.state()
                .into_iter()
                .map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)),
        )
        .collect();
    let state_info = CheckpointInfo {
        metrics: serde_json::to_value(Selection {
            best_epoch: progress.best_epoch,
            best_score: Some(progress.best_score).filter(|s| s.is_finite()),
        })
        .map_err(|e| Error::invalid("selection", e.to_string()))?,
        ..info.clone()
    };
    checkpoint::save(&files.resume, &state, &state_info)?;
    Ok(progress)
}

/// Saves the last epoch of the finished run in `from` as the kept checkpoint of another run in
/// `to` with configuration `config` (model, dataset and seed are the run's), with its log:
/// two runs whose training is the same and that differ only in which epoch they keep need one
/// training (issue 16: the standard and the E.S. heads). Returns the kept checkpoint's path.
pub fn keep_last_epoch(
    from: &Path,
    epochs: usize,
    to: &Path,
    config: &impl Serialize,
) -> Result<PathBuf> {
    let (source, target) = (RunFiles::new(from), RunFiles::new(to));
    let (saved, tensors) = checkpoint::read(&source.resume)?;
    if saved.epoch != epochs {
        return Err(Error::checkpoint(
            &source.resume,
            format!(
                "has finished {} of the {epochs} epochs whose last is wanted",
                saved.epoch
            ),
        ));
    }
    let weights: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter_map(|(name, t)| Some((name.strip_prefix(MODEL_PREFIX)?.to_string(), t)))
        .collect();
    let log = std::fs::read(&source.log)
        .map_err(|e| Error::io(format!("cannot read {}", source.log.display()), e))?;
    let last = String::from_utf8_lossy(&log)
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(serde_json::Value::Null);
    let info = CheckpointInfo {
        epoch: saved.epoch,
        metrics: last,
        ..CheckpointInfo::for_run(saved.model, saved.dataset, saved.seed, config)?
    };
    let _lock = FolderLock::acquire(to, "run folder")?;
    match std::fs::remove_file(&target.resume) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io(
                format!("cannot remove {}", target.resume.display()),
                e,
            ))
        }
        _ => {}
    }
    crate::atomic::write_atomic(&target.log, &log)?;
    checkpoint::save(&target.best, &weights, &info)?;
    Ok(target.best)
}

/// A run in progress: its files, the description each of its checkpoints carries, and where
/// it stands.
pub struct Run {
    pub files: RunFiles,
    template: CheckpointInfo,
    pub progress: Progress,
    /// Held while the run writes its folder.
    _lock: FolderLock,
}

impl Run {
    /// Starts (or with `resume` continues) a run of `epochs` epochs in `out_dir`; `template`
    /// describes its model, dataset, seed and configuration.
    pub fn start(
        out_dir: &Path,
        template: CheckpointInfo,
        epochs: usize,
        vs: &VarStore,
        adam: &mut Adam,
        resume: bool,
    ) -> Result<Self> {
        let lock = FolderLock::acquire(out_dir, "run folder")?;
        let files = RunFiles::new(out_dir);
        let progress = start(&files, out_dir, &template, epochs, vs, adam, resume)?;
        Ok(Self {
            files,
            template,
            progress,
            _lock: lock,
        })
    }

    /// Trains the remaining epochs of the run: each epoch's batches of the `train` indices of
    /// `data` go through `trainer`'s step (at the run's precision, with a progress bar), then
    /// the trainer's record is logged and printed and its score chooses the kept checkpoint.
    /// Returns the epochs this call ran.
    pub fn drive<T: Trainer>(
        &mut self,
        trainer: &mut T,
        data: &Dataset,
        settings: &RunSettings,
        train: &[i64],
        vs: &VarStore,
        adam: &mut Adam,
    ) -> Result<usize> {
        let start = self.progress.epochs_done;
        for epoch in start..settings.epochs {
            let (mut this, batches) = Epoch::begin(
                settings.seed,
                epoch,
                settings.epochs,
                train,
                settings.batch_size,
                T::DROP_LAST,
            );
            let mut seen = 0;
            for (step, index) in batches.iter().enumerate() {
                let (x, y) = this.batch(data, index);
                precision::run(settings.precision, vs.device(), || {
                    trainer.step(adam, &x, &y)
                })
                .map_err(|e| at_step(e, epoch, step))?;
                seen += y.size()[0];
                this.bar.inc(1);
                this.bar.set_message(format!(
                    "{} {:.0} img/s",
                    trainer.running(),
                    seen as f64 / this.started.elapsed().as_secs_f64()
                ));
            }
            this.bar.finish_and_clear();
            let seconds = this.started.elapsed().as_secs_f64();
            let timing = Timing {
                seconds,
                images_per_second: seen as f64 / seconds,
            };
            let end = trainer.end_epoch(epoch + 1, timing)?;
            eprintln!(
                "epoch {}/{}: {}, {:.0} images/s",
                epoch + 1,
                settings.epochs,
                end.summary,
                timing.images_per_second
            );
            self.finish_epoch(vs, adam, end.score, &end.record)?;
        }
        Ok(settings.epochs - start)
    }

    /// Ends the next epoch with its log record (also stored as the checkpoint's metrics); see
    /// [`finish_epoch`].
    fn finish_epoch(
        &mut self,
        vs: &VarStore,
        adam: &Adam,
        score: Option<f64>,
        record: &impl Serialize,
    ) -> Result<()> {
        let info = CheckpointInfo {
            epoch: self.progress.epochs_done + 1,
            metrics: serde_json::to_value(record)
                .map_err(|e| Error::invalid("log", e.to_string()))?,
            ..self.template.clone()
        };
        self.progress = finish_epoch(&self.files, &info, vs, adam, self.progress, score, record)?;
        Ok(())
    }
}

/// What a training loop adds to [`Run::drive`], which owns everything else (resuming,
/// batches, precision, progress, logging, the kept checkpoint): its step and its epoch's end.
pub trait Trainer {
    /// One line of the per-epoch log.
    type Record: Serialize;
    /// Whether an epoch drops its last, smaller batch (MI bounds compare batches of one size).
    const DROP_LAST: bool;
    /// One optimisation step on a training batch (pixels, labels), adding to the epoch's
    /// running totals; a non-finite loss is an error and no update.
    fn step(&mut self, adam: &mut Adam, x: &Tensor, y: &Tensor) -> Result<()>;
    /// The running totals, for the progress bar.
    fn running(&self) -> String;
    /// Ends epoch `epoch` (counted from 1): validation, its record, and totals reset.
    fn end_epoch(&mut self, epoch: usize, timing: Timing) -> Result<EpochEnd<Self::Record>>;
}

/// How long an epoch's steps took.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub seconds: f64,
    pub images_per_second: f64,
}

/// What a trainer reports at the end of an epoch.
pub struct EpochEnd<R> {
    pub record: R,
    /// The epoch's results in a few words, printed after it.
    pub summary: String,
    /// The validation score that chooses the kept epoch; `None` keeps the last.
    pub score: Option<f64>,
}

/// Adds the epoch and step to a divergence error.
fn at_step(e: Error, epoch: usize, step: usize) -> Error {
    match e {
        Error::Diverged(m) => Error::Diverged(format!(
            "{m} at epoch {} step {step}; try a lower learning rate",
            epoch + 1
        )),
        other => other,
    }
}

/// One training epoch: its augmentation stream, progress bar and start time.
struct Epoch {
    bar: progress::Bar,
    started: Instant,
    augment: ChaCha8Rng,
}

impl Epoch {
    /// Seeds libtorch for the epoch and shuffles `indices` into its batches, all from
    /// (seed, epoch) so that a resumed run sees the same ones.
    fn begin(
        seed: u64,
        epoch: usize,
        epochs: usize,
        indices: &[i64],
        batch_size: usize,
        drop_last: bool,
    ) -> (Self, Vec<Tensor>) {
        seed::seed_torch(seed, Stream::Torch, epoch as u64);
        let batches = epoch_batches(indices, batch_size, Some((seed, epoch as u64)), drop_last);
        let epoch = Self {
            bar: progress::bar(batches.len(), format!("epoch {}/{epochs}", epoch + 1)),
            started: Instant::now(),
            augment: seed::rng(seed, Stream::Augment, epoch as u64),
        };
        (epoch, batches)
    }

    /// The training batch at `index`: pixels (augmented where the dataset is, SPEC §5) and labels.
    fn batch(&mut self, data: &Dataset, index: &Tensor) -> (Tensor, Tensor) {
        let (x, y) = data.train.batch(index);
        if data.source.augments() {
            (augment::random_crop_flip(&x, &mut self.augment), y)
        } else {
            (x, y)
        }
    }
}
