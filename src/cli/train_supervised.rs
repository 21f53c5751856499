//! `wcmi train-supervised`: Baseline-H trained on labels (SPEC §3, §5).
use super::common::{default_out, positive, GlobalArgs, ThreatArgs};
use crate::checkpoint;
use crate::data::DatasetName;
use crate::eval::accuracy::accuracy;
use crate::train::classifier::{self, ClassifierConfig, Selection};
use std::path::PathBuf;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// mnist, fashion-mnist or cifar10.
    #[arg(long)]
    pub dataset: DatasetName,
    /// Training epochs (the paper: 300).
    #[arg(long, default_value_t = 300, value_parser = positive, allow_negative_numbers = true)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128, value_parser = positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Fraction of the training set held out for choosing the best epoch.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Use only the first N training images.
    #[arg(long, value_parser = positive)]
    pub train_limit: Option<usize>,
    /// Output folder (default: runs/supervised-<dataset>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the output folder's last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Adversarial training (Madry et al.): train on PGD examples; pick the epoch by
    /// validation accuracy under that PGD.
    #[arg(long)]
    pub adversarial: bool,
    #[command(flatten)]
    pub threat: ThreatArgs,
    /// Start the training PGD at a random point of the ball (Madry et al.).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub random_start: bool,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let config = ClassifierConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        val_fraction: args.val_fraction,
        train_limit: args.train_limit,
        seed: global.seed,
        ..Default::default()
    };
    let config = match args.adversarial {
        true => {
            let attack = args.threat.config(args.dataset, args.random_start, 1)?;
            ClassifierConfig {
                adversarial: Some(attack),
                validation_attack: Some(attack),
                selection: Selection::BestAdversarial,
                ..config
            }
        }
        false => config,
    };
    config.validate()?;
    let data = global.load_dataset(args.dataset, device)?;
    let kind = if args.adversarial {
        "adversarial"
    } else {
        "supervised"
    };
    let out = args
        .out
        .unwrap_or_else(|| default_out(kind, args.dataset, global.seed));
    let outcome = classifier::train(&data, &config, &out, args.resume, device)?;
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
