//! `wcmi demo`: the README's main command. A short supervised run on an MNIST subset (or on
//! synthetic class-template images when no data directory is found) ending with a table.
use super::common::{positive, GlobalArgs};
use crate::checkpoint;
use crate::data::{dir, synthetic, Dataset, DatasetName};
use crate::eval::accuracy::accuracy;
use crate::report::table;
use crate::train::classifier::{self, ClassifierConfig};
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
    /// Training images used.
    #[arg(long, default_value_t = 10_000, value_parser = positive)]
    pub train_limit: usize,
    #[arg(long, default_value_t = 2, value_parser = positive, allow_negative_numbers = true)]
    pub epochs: usize,
}

fn synthetic_dataset() -> Dataset {
    let shape = DatasetName::Mnist.image_shape();
    Dataset {
        name: DatasetName::Mnist,
        train: synthetic::class_templates(6000, shape, 10, 0.3, 1),
        test: synthetic::class_templates(1000, shape, 10, 0.3, 2),
    }
}

pub fn run(args: Args, global: &GlobalArgs, device: Device) -> anyhow::Result<()> {
    let started = Instant::now();
    let (data, source) = match dir::resolve(global.data_dir.as_deref()) {
        Ok(_) => (global.load_dataset(DatasetName::Mnist, device)?, "MNIST"),
        Err(_) => {
            eprintln!("no data directory found: using synthetic class-template images");
            (synthetic_dataset().to_device(device), "synthetic templates")
        }
    };
    let config = ClassifierConfig {
        epochs: args.epochs,
        train_limit: Some(args.train_limit),
        seed: global.seed,
        ..Default::default()
    };
    let outcome = classifier::train(&data, &config, &args.out, false, device)?;
    let loaded = checkpoint::load_model(&outcome.checkpoint, device)?;
    let test = accuracy(loaded.network.classifier()?, &data.test, None, 512);
    let rows = vec![vec![
        "Baseline-H (supervised)".to_string(),
        source.to_string(),
        format!("{:.2}", 100.0 * outcome.best_score),
        format!("{:.2}", 100.0 * test),
    ]];
    print!(
        "{}",
        table::markdown(
            &["model", "data", "validation acc. %", "test acc. %"],
            &rows
        )
    );
    println!(
        "checkpoint: {}\nfinished in {:.0} s",
        outcome.checkpoint.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
