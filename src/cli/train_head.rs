//! `wcmi train-head`: a linear or MLP head on a frozen encoder, trained on clean or PGD inputs
//! (SPEC §4), then evaluated on the test set under the paper's PGD.
use super::common::{GlobalArgs, RunArgs, ThreatArgs};
use crate::attack::classifier::{ClassifierAttack, Method};
use crate::checkpoint;
use crate::data::DatasetName;
use crate::eval::robustness;
use crate::nn::HeadKind;
use crate::report::table;
use crate::train::classifier::{self, ClassifierConfig, Training};
use anyhow::Context;
use std::path::PathBuf;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The encoder checkpoint (from train-encoder, or any model with an encoder).
    #[arg(long)]
    pub encoder: PathBuf,
    #[arg(long, value_enum)]
    pub head: HeadKind,
    /// standard keeps the last epoch; standard-es and adversarial (PGD inputs, attacked from
    /// pixels through the frozen encoder) keep the epoch best under PGD on the validation split.
    #[arg(long, value_enum, default_value = "standard")]
    pub training: Training,
    /// Replaced by `--training standard-es`; refused with that message.
    #[arg(long, hide = true)]
    pub early_stop: bool,
    /// Dataset (default: the encoder's).
    #[arg(long)]
    pub dataset: Option<DatasetName>,
    #[command(flatten)]
    pub threat: ThreatArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.early_stop,
        "--early-stop: the epoch choice is now part of --training: `--training standard-es` for \
         the E.S. head; `--training adversarial` always keeps the epoch best under validation PGD"
    );
    let (encoder_info, _) = checkpoint::read(&args.encoder)?;
    let dataset = args.dataset.or(encoder_info.dataset).with_context(|| {
        format!(
            "--dataset: the encoder checkpoint {} names no dataset; pass one",
            args.encoder.display()
        )
    })?;
    let preset = args.run.preset.settings();
    let evaluation = args.threat.config(&dataset.into(), false, 1)?;
    let training = args
        .threat
        .training_config(dataset, true, preset.train_pgd_steps)?;
    let config = ClassifierConfig::for_training(
        args.run.settings(&preset, preset.head_epochs, global.seed),
        args.training,
        args.head,
        Some(args.encoder.clone()),
        evaluation,
        training,
    );
    config.validate()?;
    let data = global.load_dataset(dataset, device)?;
    let name = format!("head-{}-{}", args.head.name(), args.training.name());
    let out = args
        .run
        .out
        .unwrap_or_else(|| args.encoder.with_file_name(name));
    let outcome = classifier::train(&data, &config, &out, args.run.resume, device)?;
    let loaded = checkpoint::load_model(&outcome.checkpoint, device)?;
    let attack = ClassifierAttack {
        method: Method::Pgd,
        config: evaluation,
    };
    let report = robustness::evaluate(
        loaded.network.classifier()?,
        &data.test,
        None,
        500,
        &[attack],
    )?;
    let rows = vec![vec![
        loaded.info.model.name().to_string(),
        format!("{}", outcome.best_epoch),
        format!("{:.2}", 100.0 * report.natural_accuracy),
        format!("{:.2}", 100.0 * report.worst_case_accuracy),
    ]];
    print!(
        "{}",
        table::markdown(
            &[
                "model",
                "epoch kept",
                "test natural %",
                &format!("test {} %", attack.label())
            ],
            &rows
        )
    );
    println!("checkpoint: {}", outcome.checkpoint.display());
    let out = super::evaluate::default_result_path(&outcome.checkpoint, &data.source);
    super::evaluate::write_result(
        &outcome.checkpoint,
        loaded.info.model.name(),
        &data.source,
        global.seed,
        report,
        None,
        &out,
    )
}
