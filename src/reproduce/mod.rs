//! Reproducing the paper's tables and figures (SPEC §6): the whole grid of encoders, heads and
//! supervised baselines over trials, their evaluation under the paper's PGD, a strong suite
//! and AutoAttack's standard suite with its gradient-masking flags, and the representation
//! vulnerability of every representation. Each step ([`steps`]) writes its result beside its
//! checkpoint and is skipped when that result exists; training steps resume from their last
//! epoch, so an interrupted run loses at most the epoch it was in. The steps run one after the
//! other in this process, or in several processes at once ([`processes`]).
pub mod folder;
pub mod grid;
pub mod paper;
pub mod processes;
pub mod report;
pub mod steps;

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
use crate::seed::{self, Stream};
use crate::train::preset::{Preset, PresetSettings};
use crate::train::{classifier, encoder, run};
use folder::{Measured, ReproductionFolder, TrialFolder};
use grid::{Cell, GridSettings, Representation, Scope};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use steps::{Step, TrialStep};
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
    /// Where those seconds went (the evaluation's 0 where it was the E.S. twin's, whose kept
    /// epoch this cell's weights are); absent from results of commits before it was measured.
    #[serde(default)]
    pub phases: Option<PhaseSeconds>,
}

/// The seconds of a cell's phases: where a trial's time goes, per cell (issue 16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Training the classifier, or copying the last epoch of its E.S. twin's run.
    pub training: f64,
    /// The paper's PGD on the evaluation images.
    pub pgd: f64,
    /// The strong suite and the zero-gradient check.
    pub strong: f64,
    /// AutoAttack's standard suite (0 when the preset leaves it out).
    pub autoattack: f64,
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

/// What `f` returns, with the wall seconds it took.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed().as_secs_f64()))
}

struct Trial<'a> {
    data: &'a Dataset,
    config: &'a ReproduceConfig,
    grid: GridSettings,
    trial: usize,
    folder: TrialFolder,
    device: Device,
}

impl<'a> Trial<'a> {
    fn new(
        data: &'a Dataset,
        config: &'a ReproduceConfig,
        folder: &ReproductionFolder,
        trial: usize,
        device: Device,
    ) -> Self {
        Trial {
            data,
            config,
            grid: GridSettings {
                dataset: config.dataset,
                preset: config.settings,
                attack: paper_attack(config.dataset),
                seed: config.seed + trial as u64,
            },
            trial,
            folder: folder.trial(trial),
            device,
        }
    }

    /// Runs `step` after the steps it needs (each a quick no-op when it finished earlier).
    fn run_with_needs(&self, step: Step) -> Result<()> {
        for need in step.needs(self.config.scope) {
            self.run_with_needs(need)?;
        }
        self.run(step)
    }

    /// Runs `step`, whose needs have finished.
    fn run(&self, step: Step) -> Result<()> {
        match step {
            Step::Encoder(representation) => self.encoder(representation),
            Step::Cell(cell) => {
                let encoder = cell.representation.objective().map(|_| {
                    let weights = self.folder.measured(Measured::Encoder(cell.representation));
                    weights.best
                });
                self.cell(&cell, encoder.as_deref()).map(drop)
            }
            Step::Vulnerability(measured) => self.vulnerability(measured).map(drop),
        }
    }

    fn evaluation_indices(&self, limit: Option<usize>) -> Vec<i64> {
        let n = limit.map_or(self.data.test.len(), |l| {
            (l as i64).min(self.data.test.len())
        });
        (0..n).collect()
    }

    /// Trains (or completes) a label-free representation's encoder.
    fn encoder(&self, representation: Representation) -> Result<()> {
        let objective = representation
            .objective()
            .expect("only label-free representations have an encoder");
        let config = self.grid.encoder_config(objective);
        let dir = self.folder.encoder(representation);
        if run::finished(&dir, config.run.epochs) {
            return Ok(());
        }
        eprintln!("trial {}: encoder {}", self.trial, representation.name());
        encoder::train(self.data, &config, &dir, true, self.device).map(drop)
    }

    /// Trains (or finds) and evaluates a classifier; `encoder` is its frozen encoder, if any.
    fn cell(&self, cell: &Cell, encoder: Option<&Path>) -> Result<CellResult> {
        let label = format!("trial {}: {}", self.trial, cell.name());
        cached(&self.folder.cell_result(cell), &label, || {
            let started = Instant::now();
            let (outcome, training) = timed(|| self.train_cell(cell, encoder))?;
            let phases = PhaseSeconds {
                training,
                ..PhaseSeconds::default()
            };
            let evaluated = match self.twin_evaluation(cell, outcome.best_epoch)? {
                Some(twin) => CellResult {
                    cell: *cell,
                    phases: Some(phases),
                    ..twin
                },
                None => self.evaluate_cell(cell, &outcome, phases)?,
            };
            Ok(CellResult {
                seconds: started.elapsed().as_secs_f64(),
                ..evaluated
            })
        })
    }

    /// Trains the classifier of `cell`, or takes it from its E.S. twin's run.
    fn train_cell(&self, cell: &Cell, encoder: Option<&Path>) -> Result<classifier::Outcome> {
        let dir = self.folder.cell(cell);
        let config = cell.config(&self.grid, encoder.map(Path::to_path_buf));
        match self.config.scope.trained_with(cell) {
            Some(twin) => {
                let trained = twin.config(&self.grid, encoder.map(Path::to_path_buf));
                let twin_dir = self.folder.cell(&twin);
                // Normally finished by its own step; not reopened then (as for encoders).
                if !run::finished(&twin_dir, trained.run.epochs) {
                    classifier::train(self.data, &trained, &twin_dir, true, self.device)?;
                }
                classifier::keep_last_of(&config, &trained, &twin_dir, &dir)
            }
            None => classifier::train(self.data, &config, &dir, true, self.device),
        }
    }

    /// The E.S. twin's result, when `cell` is trained by its run and the twin kept the same
    /// epoch, `kept_epoch`: the same weights, evaluated with the same attack seeds, so its
    /// evaluation is this cell's (issue 16).
    fn twin_evaluation(&self, cell: &Cell, kept_epoch: usize) -> Result<Option<CellResult>> {
        let Some(twin) = self.config.scope.trained_with(cell) else {
            return Ok(None);
        };
        let result: Option<CellResult> = read_result(&self.folder.cell_result(&twin))?;
        Ok(result.filter(|r| r.kept_epoch == kept_epoch))
    }

    /// Evaluates the trained classifier of `cell`: PGD on the evaluation images, then the
    /// strong suite and AutoAttack on the first `strong_limit`, adding their seconds to `phases`
    /// (the result's total `seconds` are the caller's to set).
    fn evaluate_cell(
        &self,
        cell: &Cell,
        outcome: &classifier::Outcome,
        mut phases: PhaseSeconds,
    ) -> Result<CellResult> {
        // The attacks' random starts and searches draw from the trial's seed alone, not
        // from whatever ran before in this process.
        seed::seed_torch(self.grid.seed, Stream::Attack, 0);
        let loaded = checkpoint::load_model(&outcome.checkpoint, self.device)?;
        let folded = loaded.network.folded_classifier()?;
        let model = &folded;
        let pgd = ClassifierAttack {
            method: Method::Pgd,
            config: self.grid.attack,
        };
        let indices = self.evaluation_indices(self.grid.preset.eval_limit);
        let (report, seconds) =
            timed(|| evaluate(model, &self.data.test, Some(&indices), 500, &[pgd]))?;
        phases.pgd = seconds;
        let strong = self.evaluation_indices(Some(self.grid.preset.strong_limit));
        let (strong_accuracy, autoattack_accuracy, masking_flags) = if strong.is_empty() {
            (None, None, Vec::new())
        } else {
            let ((strong_report, zero), seconds) = timed(|| {
                let suite = strong_suite(&self.grid.attack, STRONG_RESTARTS, 100);
                Ok((
                    cascade(model, &self.data.test, &strong, 500, &suite)?,
                    zero_gradient_images(model, &self.data.test, &strong, 500)?,
                ))
            })?;
            phases.strong = seconds;
            let (autoattack, seconds) = timed(|| {
                self.grid
                    .preset
                    .autoattack
                    .then(|| {
                        let suite =
                            autoattack_suite(&self.grid.attack, AUTOATTACK_STEPS, SQUARE_QUERIES);
                        cascade(model, &self.data.test, &strong, 500, &suite)
                    })
                    .transpose()
            })?;
            phases.autoattack = seconds;
            (
                Some(strong_report.worst_case_accuracy),
                autoattack.as_ref().map(|a| a.worst_case_accuracy),
                // Without Square only the zero-gradient check applies.
                MaskingChecks::new(zero, autoattack.as_ref().unwrap_or(&strong_report), None).flags,
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
            seconds: 0.0,
            phases: Some(phases),
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
    write_results(&folder, config)
}

/// The results the steps of `config` have stored under `folder`, in plan order.
fn collect(folder: &ReproductionFolder, config: ReproduceConfig) -> Result<Results> {
    let mut results = Results::new(config);
    for step in steps::plan(results.config.scope, results.config.trials) {
        let dir = folder.trial(step.trial);
        match step.step {
            Step::Encoder(_) => {}
            Step::Cell(cell) => results.cells.extend(read_result(&dir.cell_result(&cell))?),
            Step::Vulnerability(measured) => results
                .representations
                .extend(read_result(&dir.vulnerability(measured))?),
        }
    }
    Ok(results)
}

/// The evaluation PGD of a dataset (SPEC §5).
pub fn paper_attack(dataset: DatasetName) -> AttackConfig {
    let t = dataset.threat();
    AttackConfig::linf(t.eps, t.steps, t.step_size)
}

/// Takes the reproduction folder `out` for `config`: refuses a folder that another process is
/// running, then [`record`]s `config` there.
fn claim(
    config: &ReproduceConfig,
    out: &Path,
) -> Result<(crate::folder_lock::FolderLock, ReproductionFolder)> {
    let lock = crate::folder_lock::FolderLock::acquire(out, "reproduction folder")?;
    Ok((lock, record(config, out)?))
}

/// Checks the settings, refuses a folder that holds other settings, and records `config` there.
fn record(config: &ReproduceConfig, out: &Path) -> Result<ReproductionFolder> {
    config.validate()?;
    let folder = ReproductionFolder::new(out);
    claim_folder(
        &folder.config(),
        folder.root(),
        config,
        ReproduceConfig::identity,
        "reproduction",
    )?;
    Ok(folder)
}

/// Runs (or completes) the grid under `out` in this process, one step after the other, then
/// writes `results.json`, the Markdown table, plots and the HTML report there.
pub fn reproduce(
    data: &Dataset,
    config: &ReproduceConfig,
    out: &Path,
    device: Device,
) -> Result<Results> {
    let (_lock, folder) = claim(config, out)?;
    for step in steps::plan(config.scope, config.trials) {
        Trial::new(data, config, &folder, step.trial, device).run(step.step)?;
    }
    write_results(&folder, config.clone())
}

/// [`reproduce`] with up to `jobs` steps at once, each in the process `command(step)`, which
/// must run [`run_step`] for that step with the same settings; each step's output goes to its
/// log (`logs/` in the folder).
pub fn reproduce_in_processes(
    config: &ReproduceConfig,
    out: &Path,
    jobs: usize,
    command: &dyn Fn(&TrialStep) -> Command,
) -> Result<Results> {
    let (_lock, folder) = claim(config, out)?;
    let plan = steps::plan(config.scope, config.trials);
    processes::run_steps(&plan, config.scope, jobs, command, &|s| folder.step_log(s))?;
    write_results(&folder, config.clone())
}

/// Runs the one step named `name` (e.g. `trial-0/worst-case-mlp-adversarial`) of the
/// reproduction under `out`, and the steps it needs unless they finished. It takes no lock on
/// the folder: the process that started it holds that.
pub fn run_step(
    data: &Dataset,
    config: &ReproduceConfig,
    out: &Path,
    name: &str,
    device: Device,
) -> Result<()> {
    let step = TrialStep::find(name, &steps::plan(config.scope, config.trials))?;
    let folder = record(config, out)?;
    Trial::new(data, config, &folder, step.trial, device).run_with_needs(step.step)
}

/// Writes `results.json` and the report from what the steps of `config` stored in `folder`.
fn write_results(folder: &ReproductionFolder, config: ReproduceConfig) -> Result<Results> {
    let results = collect(folder, config)?;
    write_json_atomic(&folder.results(), &results)?;
    report::write(&results, folder)?;
    Ok(results)
}
