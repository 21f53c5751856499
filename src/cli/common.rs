//! Options shared by every subcommand, and helpers they all use.
use crate::attack::{AttackConfig, Norm};
use crate::data::{dir, DataSource, Dataset, DatasetName};
use crate::model::Model;
use anyhow::Context;
use clap::ValueEnum;
use std::path::{Path, PathBuf};
use tch::Device;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a GPU is usable, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

#[derive(clap::Args, Debug)]
pub struct GlobalArgs {
    /// Where to compute.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU threads for libtorch (default: libtorch's choice, one per core).
    #[arg(long, global = true, value_parser = positive, allow_hyphen_values = true)]
    pub threads: Option<usize>,
    /// Seed of every random choice (initialisation, shuffling, augmentation, dropout, the
    /// attacks' random starts and searches).
    #[arg(long, global = true, default_value_t = 0, allow_hyphen_values = true)]
    pub seed: u64,
    /// Dataset directory (default: $WCMI_DATA, else ./data, else ../shared/data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

impl GlobalArgs {
    /// Applies the thread setting and resolves the device.
    pub fn apply(&self) -> anyhow::Result<Device> {
        if let Some(threads) = self.threads {
            tch::set_num_threads(threads as i32);
        }
        Ok(match self.device {
            DeviceChoice::Auto => Device::cuda_if_available(),
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda => {
                anyhow::ensure!(
                    tch::Cuda::is_available(),
                    "--device cuda: no CUDA device is usable (no GPU, or libtorch installed \
                     without CUDA: run `scripts/setup-libtorch.sh cuda` and rebuild)"
                );
                Device::Cuda(0)
            }
        })
    }

    /// Loads a known dataset or an image folder onto `device`.
    pub fn load_source(&self, source: &DataSource, device: Device) -> anyhow::Result<Dataset> {
        match source {
            DataSource::Named(name) => self.load_dataset(*name, device),
            DataSource::Folder(dir) => Ok(Dataset::load_folder(dir)?.to_device(device)),
        }
    }

    /// Loads a dataset from the resolved data directory onto `device`.
    pub fn load_dataset(&self, name: DatasetName, device: Device) -> anyhow::Result<Dataset> {
        // The library names the problem; the command that mends it is the CLI's to name.
        let with_fetch_hint = |error: crate::error::Error, context: String| {
            anyhow::anyhow!(
                "{}; `wcmi data fetch {name}` downloads and verifies the official files",
                super::message(&anyhow::Error::from(error).context(context))
            )
        };
        let dir = dir::resolve(self.data_dir.as_deref())
            .map_err(|e| with_fetch_hint(e, "finding the data".into()))?;
        let data =
            Dataset::load(name, &dir).map_err(|e| with_fetch_hint(e, format!("loading {name}")))?;
        Ok(data.to_device(device))
    }
}

/// The model to measure: a wcmi checkpoint or a TorchScript file, exactly one.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ModelArgs {
    /// A wcmi checkpoint (`model.safetensors` of a training run).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// A TorchScript model (`torch.jit.save`) trained anywhere: `forward(x)` returns logits,
    /// a method (`--layer`, default `encode`) a representation; inputs NCHW in [0, 1], any
    /// normalisation inside the model. Needs --dataset (a dataset's name or an image folder).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

impl ModelArgs {
    pub fn path(&self) -> &Path {
        self.checkpoint
            .as_deref()
            .or(self.model.as_deref())
            .expect("clap requires one of --checkpoint and --model")
    }

    pub fn load(&self, device: Device) -> anyhow::Result<Model> {
        Ok(match &self.checkpoint {
            Some(path) => Model::checkpoint(path, device)?,
            None => Model::torchscript(self.path(), device)?,
        })
    }

    /// The dataset to measure on: the one given, else the checkpoint's own.
    pub fn dataset(&self, model: &Model, given: Option<DataSource>) -> anyhow::Result<DataSource> {
        given
            .or(model.dataset().map(DataSource::Named))
            .with_context(|| match model {
                Model::Script(_) => format!(
                    "--dataset: the TorchScript model {} names no dataset; pass one",
                    self.path().display()
                ),
                Model::Native { .. } => format!(
                    "--dataset: the checkpoint {} names no dataset; pass one",
                    self.path().display()
                ),
            })
    }
}

/// The default output folder of a run: `runs/<what>-<dataset>-seed<seed>`.
pub fn default_out(what: &str, dataset: DatasetName, seed: u64) -> PathBuf {
    Path::new("runs").join(format!("{what}-{dataset}-seed{seed}"))
}

/// Parses a strictly positive count (epochs, batch size), rejecting 0 and negative numbers with
/// a message instead of clap's "unexpected argument".
pub fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<i64>() {
        Ok(v) if v > 0 => Ok(v as usize),
        Ok(v) => Err(format!("must be positive, got {v}")),
        Err(_) => Err(format!("expected a positive integer, got '{s}'")),
    }
}

/// The threat model and PGD settings; each defaults to the dataset's value in SPEC §5.
#[derive(clap::Args, Debug, Clone)]
pub struct ThreatArgs {
    /// Radius ε of the perturbation ball (default: the dataset's, e.g. 0.3 for MNIST).
    #[arg(long, allow_hyphen_values = true)]
    pub eps: Option<f64>,
    /// PGD steps (default: the dataset's).
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub steps: Option<usize>,
    /// PGD step size α (default: the dataset's).
    #[arg(long, allow_hyphen_values = true)]
    pub step_size: Option<f64>,
    /// Norm of the threat ball [default: linf].
    #[arg(long, value_enum)]
    pub norm: Option<Norm>,
}

impl ThreatArgs {
    /// The attack settings for images of `data`, validated; an image folder has no defaults,
    /// so its radius, steps and step size must all be given.
    pub fn config(
        &self,
        data: &DataSource,
        random_start: bool,
        restarts: usize,
    ) -> anyhow::Result<AttackConfig> {
        let norm = self.norm.unwrap_or(Norm::Linf);
        anyhow::ensure!(
            norm == Norm::Linf || self.eps.is_some(),
            "--eps: the dataset defaults are ℓ∞ radii; give one with --norm l2"
        );
        let given = (self.eps, self.steps, self.step_size);
        let (eps, steps, step_size) = match (data.threat(), given) {
            (Some(d), (eps, steps, step_size)) => (
                eps.unwrap_or(d.eps),
                steps.unwrap_or(d.steps),
                step_size.unwrap_or(d.step_size),
            ),
            (None, (Some(eps), Some(steps), Some(step_size))) => (eps, steps, step_size),
            (None, _) => anyhow::bail!(
                "--eps, --steps, --step-size: {data} has no default threat; give all three"
            ),
        };
        let config = AttackConfig {
            norm,
            eps,
            steps,
            step_size,
            random_start,
            restarts,
            bounds: Some((0.0, 1.0)),
        };
        config.validate()?;
        Ok(config)
    }
}

impl ThreatArgs {
    /// Refuses threat flags given to a command that will not attack (`needs` says what would
    /// make it attack), instead of accepting and ignoring them.
    pub fn refuse_unused(&self, needs: &str) -> anyhow::Result<()> {
        let given = [
            ("--eps", self.eps.is_some()),
            ("--steps", self.steps.is_some()),
            ("--step-size", self.step_size.is_some()),
            ("--norm", self.norm.is_some()),
        ];
        match given.iter().find(|(_, given)| *given) {
            Some((flag, _)) => anyhow::bail!("{flag}: this run attacks nothing; it needs {needs}"),
            None => Ok(()),
        }
    }

    /// The training attack: as [`ThreatArgs::config`], with the preset's fewer PGD steps unless
    /// steps or step size were given explicitly.
    pub fn training_config(
        &self,
        dataset: DatasetName,
        random_start: bool,
        preset_steps: Option<usize>,
    ) -> anyhow::Result<AttackConfig> {
        let config = self.config(&dataset.into(), random_start, 1)?;
        Ok(match (self.steps, self.step_size) {
            (None, None) => crate::train::preset::training_attack(config, preset_steps),
            _ => config,
        })
    }
}

/// The settings every training command shares; a preset fills in what is not given.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Epochs, critic width, training PGD steps and data size.
    #[arg(long, value_enum, default_value = "paper")]
    pub preset: crate::train::preset::Preset,
    /// Epochs (default: the preset's).
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 128, value_parser = positive, allow_hyphen_values = true)]
    pub batch_size: usize,
    /// Adam learning rate (default: the preset's).
    #[arg(long, allow_hyphen_values = true)]
    pub lr: Option<f64>,
    /// Use only the first N training images (default: the preset's).
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub train_limit: Option<usize>,
    /// Output folder.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the output folder's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Arithmetic of the training steps: f32, or bf16 autocast (products in bf16, weights f32)
    /// (default: the preset's).
    #[arg(long, value_enum)]
    pub precision: Option<crate::precision::Precision>,
}

impl RunArgs {
    /// The run's settings: these flags where given, else `preset`'s (`preset_epochs` for this
    /// kind of run), SPEC §5 for the rest.
    pub fn settings(
        &self,
        preset: &crate::train::preset::PresetSettings,
        preset_epochs: usize,
        seed: u64,
    ) -> crate::train::RunSettings {
        crate::train::RunSettings {
            epochs: self.epochs.unwrap_or(preset_epochs),
            batch_size: self.batch_size,
            lr: self.lr.unwrap_or(preset.lr),
            train_limit: self.train_limit.or(preset.train_limit),
            seed,
            precision: self.precision.unwrap_or(preset.precision),
            ..Default::default()
        }
    }
}
