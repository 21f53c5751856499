//! Reproducing the paper's tables and figures (SPEC §6): the whole grid of encoders, heads and
//! supervised baselines over trials, their evaluation under the paper's PGD, a strong suite
//! and AutoAttack's standard suite with its gradient-masking flags, and the representation
//! vulnerability of every representation. Each step writes its result beside its checkpoint and is skipped when that result exists; training steps resume
//! from their last epoch, so an interrupted run loses at most the epoch it was in.
pub mod folder;
pub mod grid;
pub mod paper;
pub mod report;

use crate::atomic::write_json_atomic;
use crate::attack::classifier::{
    autoattack_suite, strong_suite, ClassifierAttack, Method, AUTOATTACK_STEPS, SQUARE_QUERIES,
    STRONG_RESTARTS,
};
use crate::attack::AttackConfig;
use crate::checkpoint;
use crate::data::{split, Dataset, DatasetName};
use crate::error::{Error, Result};
use crate::eval::masking::{zero_gradient_images, MaskingChecks};
use crate::eval::robustness::{cascade, evaluate};
use crate::eval::vulnerability::{self, with_layer_problem, VulnerabilityReport};
use crate::mi::worst_case::{AttackGradient, CriticSpec, RepresentationMiConfig};
use crate::mi::{Bound, CriticConfig};
use crate::model::Model;
use crate::nn::critic::CriticKind;
use crate::report::cache::{cached, claim_folder, read_result};
use crate::train::preset::{Preset, PresetSettings};
use crate::train::{classifier, encoder};
use folder::{Measured, ReproductionFolder, TrialFolder};
use grid::{Cell, GridSettings, Representation, Scope};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::Device;

/// What a reproduction runs: a dataset, a preset's settings, and how many seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReproduceConfig {
    pub dataset: DatasetName,
    pub preset: Preset,
    pub settings: PresetSettings,
    /// Independent trials; trial t uses seed `seed + t` (the paper: 4).
    pub trials: usize,
    pub seed: u64,
    /// The bound of the MI estimates behind the vulnerability and Theorem 3.4.
    pub mi_bound: Bound,
    /// The critic of those estimates.
    pub mi_critic: CriticKind,
    /// Synthetic class templates stand in for the dataset (the demo without data): the
    /// tables then show no paper values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic_data: bool,
    /// The whole grid, or only the headline comparison (absent in older configs: the grid).
    #[serde(default, skip_serializing_if = "Scope::is_grid")]
    pub scope: Scope,
}

impl ReproduceConfig {
    fn validate(&self) -> Result<()> {
        crate::error::ensure_positive("trials", self.trials as i64)
    }

    /// The configuration that must match for earlier results to be reused (more trials may
    /// be added to a finished run).
    fn identity(&self) -> ReproduceConfig {
        ReproduceConfig {
            trials: 0,
            ..self.clone()
        }
    }
}

/// One evaluated classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellResult {
    #[serde(flatten)]
    pub cell: Cell,
    pub trial: usize,
    pub seed: u64,
    /// Test images evaluated.
    pub examples: usize,
    pub natural_accuracy: f64,
    /// Accuracy under the paper's PGD.
    pub adversarial_accuracy: f64,
    /// Accuracy under the strong suite (PGD, PGD with restarts, APGD-CE, APGD-DLR), on the
    /// first `strong_examples` test images.
    pub strong_accuracy: Option<f64>,
    pub strong_examples: usize,
    /// Accuracy under AutoAttack's standard suite (APGD-CE, APGD-T, Square) on the same
    /// images; absent from results of commits before it was measured.
    #[serde(default)]
    pub autoattack_accuracy: Option<f64>,
    /// The gradient-masking flags raised on those images (empty: none).
    #[serde(default)]
    pub masking_flags: Vec<String>,
    /// The epoch kept by the cell's selection rule.
    pub kept_epoch: usize,
    /// Training and evaluation time.
    pub seconds: f64,
}

/// The vulnerability of one representation (an encoder's, or a supervised model's 64-d layer).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepresentationResult {
    /// `dim`, `worst-case`, or the name of a supervised cell.
    pub model: String,
    pub representation: Representation,
    pub trial: usize,
    pub report: VulnerabilityReport,
    pub seconds: f64,
}

/// Everything a reproduction measured: `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Results {
    pub config: ReproduceConfig,
    /// The evaluation PGD (SPEC §5).
    pub attack: AttackConfig,
    pub cells: Vec<CellResult>,
    pub representations: Vec<RepresentationResult>,
    pub wcmi_version: String,
}

impl Results {
    /// No results yet, for a reproduction with `config`.
    fn new(config: ReproduceConfig) -> Self {
        Self {
            attack: paper_attack(config.dataset),
            config,
            cells: Vec::new(),
            representations: Vec::new(),
            wcmi_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

struct Trial<'a> {
    data: &'a Dataset,
    config: &'a ReproduceConfig,
    grid: GridSettings,
    trial: usize,
    folder: TrialFolder,
    device: Device,
}

impl Trial<'_> {
    fn evaluation_indices(&self, limit: Option<usize>) -> Vec<i64> {
        let n = limit.map_or(self.data.test.len(), |l| {
            (l as i64).min(self.data.test.len())
        });
        (0..n).collect()
    }

    fn encoder(&self, representation: Representation) -> Result<PathBuf> {
        let objective = representation
            .objective()
            .expect("only label-free representations have an encoder");
        let config = self.grid.encoder_config(objective);
        let dir = self.folder.encoder(representation);
        eprintln!("trial {}: encoder {}", self.trial, representation.name());
        Ok(encoder::train(self.data, &config, &dir, true, self.device)?.checkpoint)
    }

    /// Trains (or finds) and evaluates a classifier; `encoder` is its frozen encoder, if any.
    fn cell(&self, cell: &Cell, encoder: Option<&Path>) -> Result<CellResult> {
        let dir = self.folder.cell(cell);
        let label = format!("trial {}: {}", self.trial, cell.name());
        cached(&self.folder.cell_result(cell), &label, || {
            let started = Instant::now();
            let config = cell.config(&self.grid, encoder.map(Path::to_path_buf));
            let outcome = match self.config.scope.trained_with(cell) {
                Some(twin) => {
                    let trained = twin.config(&self.grid, encoder.map(Path::to_path_buf));
                    let twin_dir = self.folder.cell(&twin);
                    classifier::train(self.data, &trained, &twin_dir, true, self.device)?;
                    classifier::keep_last_of(&config, &trained, &twin_dir, &dir)?
                }
                None => classifier::train(self.data, &config, &dir, true, self.device)?,
            };
            let loaded = checkpoint::load_model(&outcome.checkpoint, self.device)?;
            let folded = loaded.network.folded_classifier()?;
            let model = &folded;
            let pgd = ClassifierAttack {
                method: Method::Pgd,
                config: self.grid.attack,
            };
            let indices = self.evaluation_indices(self.grid.preset.eval_limit);
            let report = evaluate(model, &self.data.test, Some(&indices), 500, &[pgd])?;
            let strong = self.evaluation_indices(Some(self.grid.preset.strong_limit));
            let (strong_accuracy, autoattack_accuracy, masking_flags) = if strong.is_empty() {
                (None, None, Vec::new())
            } else {
                let suite = strong_suite(&self.grid.attack, STRONG_RESTARTS, 100);
                let strong_report = cascade(model, &self.data.test, &strong, 500, &suite)?;
                let autoattack = if self.grid.preset.autoattack {
                    let suite =
                        autoattack_suite(&self.grid.attack, AUTOATTACK_STEPS, SQUARE_QUERIES);
                    Some(cascade(model, &self.data.test, &strong, 500, &suite)?)
                } else {
                    None
                };
                let zero = zero_gradient_images(model, &self.data.test, &strong, 500)?;
                (
                    Some(strong_report.worst_case_accuracy),
                    autoattack.as_ref().map(|a| a.worst_case_accuracy),
                    // Without Square only the zero-gradient check applies.
                    MaskingChecks::new(zero, autoattack.as_ref().unwrap_or(&strong_report), None)
                        .flags,
                )
            };
            Ok(CellResult {
                cell: *cell,
                trial: self.trial,
                seed: self.grid.seed,
                examples: report.examples,
                natural_accuracy: report.natural_accuracy,
                adversarial_accuracy: report.worst_case_accuracy,
                strong_accuracy,
                strong_examples: strong.len(),
                autoattack_accuracy,
                masking_flags,
                kept_epoch: outcome.best_epoch,
                seconds: started.elapsed().as_secs_f64(),
            })
        })
    }

    /// RV of a trained 64-d representation, with a fresh critic (SPEC §4).
    fn vulnerability(&self, measured: Measured) -> Result<RepresentationResult> {
        let label = format!("trial {}: vulnerability of {}", self.trial, measured.name());
        cached(&self.folder.vulnerability(measured), &label, || {
            let started = Instant::now();
            let s = &self.grid.preset;
            let weights = self.folder.measured(measured).best;
            let model = Model::checkpoint(&weights, self.device)?;
            let layer = model.layer("encoder", self.data)?;
            let config = RepresentationMiConfig {
                critic: CriticConfig {
                    bound: self.config.mi_bound,
                    epochs: s.mi_epochs,
                    batch_size: 128,
                    lr: s.lr,
                    test_batches: s.mi_test_batches,
                    seed: self.grid.seed,
                },
                critic_spec: CriticSpec::image(
                    self.config.mi_critic,
                    self.data.train.image_shape(),
                    s.critic_width,
                ),
                attack: None,
                attack_gradient: AttackGradient::Representation,
            };
            let parts = split::train_validation(self.data.train.len(), 0.1, 0)?;
            let train: Vec<i64> = parts.train.into_iter().take(s.mi_train_limit).collect();
            let test = self.evaluation_indices(None);
            let report = with_layer_problem(&layer, self.data, &train, &test, |problem| {
                vulnerability::measure(
                    problem,
                    &config,
                    self.grid.attack,
                    self.data.num_classes(),
                    false,
                    self.device,
                )
            })?;
            Ok(RepresentationResult {
                model: measured.name(),
                representation: measured.representation(),
                trial: self.trial,
                report,
                seconds: started.elapsed().as_secs_f64(),
            })
        })
    }
}

/// The representations that get a vulnerability estimate: both encoders', then the supervised
/// cells' 64-d layers.
fn measured() -> Vec<Measured> {
    [Representation::Dim, Representation::WorstCase]
        .map(Measured::Encoder)
        .into_iter()
        .chain(
            grid::cells()
                .into_iter()
                .filter(|c| c.representation == Representation::Supervised)
                .map(Measured::Supervised),
        )
        .collect()
}

enum Step {
    Cell(Cell),
    Vulnerability(Measured),
}

/// The order of a trial's steps: the paper's headline comparison first (the scope's headline
/// cells and the encoders' vulnerability), so that an interrupted or partial run
/// (`--report-only`) has the most telling numbers; then, for the grid, everything else.
fn schedule(scope: Scope) -> Vec<Step> {
    let mut cells = scope.cells().into_iter();
    let mut representations = measured().into_iter();
    let mut steps: Vec<Step> = cells
        .by_ref()
        .take(grid::headline_cells().len())
        .map(Step::Cell)
        .collect();
    steps.extend(representations.by_ref().take(2).map(Step::Vulnerability));
    if scope.is_grid() {
        steps.extend(cells.map(Step::Cell));
        steps.extend(representations.map(Step::Vulnerability));
    }
    steps
}

/// Gathers what the reproduction in `out` has finished so far (without training anything) and
/// writes `results.json` and the report from it.
pub fn report_so_far(out: &Path) -> Result<Results> {
    let folder = ReproductionFolder::new(out);
    let config: ReproduceConfig = read_result(&folder.config())?.ok_or_else(|| {
        Error::invalid(
            "run_folder",
            format!("{} holds no reproduction (no config.json)", out.display()),
        )
    })?;
    let mut results = Results::new(config);
    for trial in 0..results.config.trials {
        let dir = folder.trial(trial);
        for cell in grid::cells() {
            results.cells.extend(read_result(&dir.cell_result(&cell))?);
        }
        for measured in measured() {
            results
                .representations
                .extend(read_result(&dir.vulnerability(measured))?);
        }
    }
    write_results(&results, &folder)?;
    Ok(results)
}

/// The evaluation PGD of a dataset (SPEC §5).
pub fn paper_attack(dataset: DatasetName) -> AttackConfig {
    let t = dataset.threat();
    AttackConfig::linf(t.eps, t.steps, t.step_size)
}

/// Runs (or completes) the grid under `out`, then writes `results.json`, the Markdown table,
/// plots and the HTML report there.
pub fn reproduce(
    data: &Dataset,
    config: &ReproduceConfig,
    out: &Path,
    device: Device,
) -> Result<Results> {
    config.validate()?;
    let _lock = crate::folder_lock::FolderLock::acquire(out, "reproduction folder")?;
    let folder = ReproductionFolder::new(out);
    claim_folder(
        &folder.config(),
        folder.root(),
        config,
        ReproduceConfig::identity,
        "reproduction",
    )?;
    let mut results = Results::new(config.clone());
    let attack = results.attack;
    for trial in 0..config.trials {
        let t = Trial {
            data,
            config,
            grid: GridSettings {
                dataset: config.dataset,
                preset: config.settings,
                attack,
                seed: config.seed + trial as u64,
            },
            trial,
            folder: folder.trial(trial),
            device,
        };
        let dim = t.encoder(Representation::Dim)?;
        let worst_case = t.encoder(Representation::WorstCase)?;
        for step in schedule(config.scope) {
            match step {
                Step::Cell(cell) => {
                    let encoder = match cell.representation {
                        Representation::Dim => Some(dim.as_path()),
                        Representation::WorstCase => Some(worst_case.as_path()),
                        Representation::Supervised => None,
                    };
                    results.cells.push(t.cell(&cell, encoder)?);
                }
                Step::Vulnerability(measured) => {
                    results.representations.push(t.vulnerability(measured)?);
                }
            }
        }
    }
    write_results(&results, &folder)?;
    Ok(results)
}

/// Writes `results.json` and the report from it.
fn write_results(results: &Results, folder: &ReproductionFolder) -> Result<()> {
    write_json_atomic(&folder.results(), results)?;
    report::write(results, folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_every_step_of_its_scope_once_headline_first() {
        for scope in [Scope::Grid, Scope::Headline] {
            let steps = schedule(scope);
            let cells: Vec<Cell> = steps
                .iter()
                .filter_map(|s| match s {
                    Step::Cell(c) => Some(*c),
                    Step::Vulnerability(..) => None,
                })
                .collect();
            assert_eq!(cells, scope.cells());
            let measured = steps.len() - cells.len();
            let expected = if scope.is_grid() {
                super::measured().len()
            } else {
                2
            };
            assert_eq!(measured, expected, "{scope:?}");
        }
    }
}
