//! `wcmi evaluate --checkpoint C --dataset D`: test accuracy, printed and written as JSON.
use super::common::{positive, GlobalArgs};
use crate::atomic::write_json_atomic;
use crate::checkpoint;
use crate::data::DatasetName;
use crate::eval::accuracy::accuracy;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A classifier checkpoint (`model.safetensors` of a training run).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset to evaluate on (default: the checkpoint's own).
    #[arg(long)]
    pub dataset: Option<DatasetName>,
    /// Where to write the JSON result (default: beside the checkpoint, eval-<dataset>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 512, value_parser = positive, allow_negative_numbers = true)]
    pub batch_size: usize,
}

#[derive(Serialize)]
struct EvaluationResult {
    checkpoint: PathBuf,
    model: String,
    dataset: DatasetName,
    test_images: i64,
    natural_accuracy: f64,
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let loaded = checkpoint::load_classifier(&args.checkpoint, device)?;
    let dataset = args.dataset.or(loaded.info.dataset).with_context(|| {
        format!(
            "--dataset: the checkpoint {} names no dataset; pass one",
            args.checkpoint.display()
        )
    })?;
    let expected = loaded.info.model.image_shape();
    anyhow::ensure!(
        expected == dataset.image_shape(),
        "--dataset {dataset}: its images are {:?} but the checkpoint {} expects {:?}",
        dataset.image_shape(),
        args.checkpoint.display(),
        expected
    );
    let data = global.load_dataset(dataset, device)?;
    let result = EvaluationResult {
        checkpoint: args.checkpoint.clone(),
        model: loaded.info.model.name().to_string(),
        dataset,
        test_images: data.test.len(),
        natural_accuracy: accuracy(loaded.model.as_ref(), &data.test, None, args.batch_size),
    };
    let out = args.out.unwrap_or_else(|| {
        args.checkpoint
            .with_file_name(format!("eval-{dataset}.json"))
    });
    write_json_atomic(&out, &result)?;
    println!(
        "{} on {dataset} test ({} images): natural accuracy {:.2}%\nwritten: {}",
        result.model,
        result.test_images,
        100.0 * result.natural_accuracy,
        out.display()
    );
    Ok(())
}
