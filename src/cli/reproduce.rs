//! `wcmi reproduce`: the paper's grid for one dataset (SPEC §6), with results, plots and an
//! HTML report. Running it again on the same `--out` completes what is missing.
use super::common::{positive, GlobalArgs};
use super::jobs::JobArgs;
use crate::data::DatasetName;
use crate::mi::Bound;
use crate::nn::critic::CriticKind;
use crate::precision::Precision;
use crate::reproduce::{self, folder::ReproductionFolder, grid::Scope, report, ReproduceConfig};
use crate::train::preset::Preset;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// mnist, fashion-mnist or cifar10.
    #[arg(long)]
    pub dataset: DatasetName,
    /// Epochs, widths, PGD steps, data and evaluation sizes (see the README).
    #[arg(long, value_enum, default_value = "cpu")]
    pub preset: Preset,
    /// Independent trials (seeds seed, seed+1, …); the paper uses 4.
    #[arg(long, default_value_t = 1, value_parser = positive, allow_hyphen_values = true)]
    pub trials: usize,
    /// Use only the first N training images (default: the preset's).
    #[arg(long, value_parser = positive, allow_hyphen_values = true)]
    pub train_limit: Option<usize>,
    /// The MI bound of the vulnerability estimates.
    #[arg(long, value_enum, default_value = "infonce")]
    pub mi_bound: Bound,
    /// The critic of the vulnerability estimates: `global-cosine` (the default) and `global`
    /// see the whole image, `local` is the paper's patch critic. The dot-product `global` critic
    /// saturates InfoNCE on the encoders' representations, where PGD on Î loses its gradient
    /// and I_wc comes out near the cap (README, "Reproducing the paper").
    #[arg(long, value_enum, default_value = "global-cosine")]
    pub mi_critic: CriticKind,
    /// Arithmetic of every training step, encoders' and classifiers' (default: the preset's,
    /// f32); evaluations and MI estimates stay f32. `bf16` about halves the training time on an
    /// AMD Zen 4 and slows it on an Intel Xeon without AMX: measure it with `wcmi bench
    /// --precision bf16` (README, "Speed against the PyTorch peer").
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Output folder (default: runs/reproduce-<dataset>-<preset>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Train nothing: write the results and report of what the folder has finished so far,
    /// with the settings it was started with (so none may be given here but --preset and
    /// --out, which find the folder).
    #[arg(long, conflicts_with_all = ["trials", "train_limit", "mi_bound", "mi_critic", "precision", "jobs", "step"])]
    pub report_only: bool,
    #[command(flatten)]
    pub jobs: JobArgs,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut settings = args.preset.settings();
    if let Some(limit) = args.train_limit {
        settings.train_limit = Some(limit);
    }
    if let Some(precision) = args.precision {
        settings.precision = precision;
    }
    let config = ReproduceConfig {
        dataset: args.dataset,
        preset: args.preset,
        settings,
        trials: args.trials,
        seed: global.seed,
        mi_bound: args.mi_bound,
        mi_critic: args.mi_critic,
        synthetic_data: false,
        scope: Scope::Grid,
    };
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(format!("reproduce-{}-{}", args.dataset, args.preset.name()))
    });
    let results = if args.report_only {
        anyhow::ensure!(
            global.seed == 0,
            "--seed: --report-only reports what the folder's own settings produced; drop it"
        );
        reproduce::report_so_far(&out)?
    } else {
        let data = global.load_dataset(args.dataset, device)?;
        match args.jobs.run(&data, &config, &out, global, device)? {
            Some(results) => results,
            None => return Ok(()),
        }
    };
    print!("{}", report::markdown(&results));
    println!(
        "report: {}\nfinished in {:.0} s",
        ReproductionFolder::new(&out).report().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
