//! `wcmi train-supervised`: Baseline-H trained on labels (SPEC §3, §5).
use super::common::{default_out, GlobalArgs, RunArgs, ThreatArgs};
use crate::checkpoint;
use crate::data::DatasetName;
use crate::eval::accuracy::accuracy;
use crate::train::classifier::{self, ClassifierConfig, Selection};
use crate::train::RunSettings;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// mnist, fashion-mnist or cifar10.
    #[arg(long)]
    pub dataset: DatasetName,
    /// Fraction of the training set held out for choosing the best epoch.
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    pub val_fraction: f64,
    #[command(flatten)]
    pub run: RunArgs,
    /// Adversarial training (Madry et al.): train on PGD examples; pick the epoch by
    /// validation accuracy under that PGD.
    #[arg(long)]
    pub adversarial: bool,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Start the training PGD at a random point of the ball (Madry et al.) [default: true].
    #[arg(long, action = clap::ArgAction::Set)]
    pub random_start: Option<bool>,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let preset = args.run.preset.settings();
    let config = ClassifierConfig {
        run: RunSettings {
            val_fraction: args.val_fraction,
            ..args
                .run
                .settings(&preset, preset.supervised_epochs, global.seed)
        },
        ..Default::default()
    };
    let config = match args.adversarial {
        true => {
            let training = args.threat.training_config(
                args.dataset,
                args.random_start.unwrap_or(true),
                preset.train_pgd_steps,
            )?;
            ClassifierConfig {
                adversarial: Some(training),
                validation_attack: Some(args.threat.config(&args.dataset.into(), false, 1)?),
                selection: Selection::BestAdversarial,
                ..config
            }
        }
        false => {
            args.threat.refuse_unused("--adversarial")?;
            anyhow::ensure!(
                args.random_start.is_none(),
                "--random-start: this run attacks nothing; it needs --adversarial"
            );
            config
        }
    };
    config.validate()?;
    let data = global.load_dataset(args.dataset, device)?;
    let kind = if args.adversarial {
        "adversarial"
    } else {
        "supervised"
    };
    let out = args
        .run
        .out
        .unwrap_or_else(|| default_out(kind, args.dataset, global.seed));
    let outcome = classifier::train(&data, &config, &out, args.run.resume, device)?;
    let loaded = checkpoint::load_model(&outcome.checkpoint, device)?;
    let test = accuracy(loaded.network.classifier()?, &data.test, None, 512);
    println!(
        "best epoch {} (validation selection score {:.2}%), natural test accuracy {:.2}%\ncheckpoint: {}",
        outcome.best_epoch,
        100.0 * outcome.best_score,
        100.0 * test,
        outcome.checkpoint.display()
    );
    Ok(())
}
