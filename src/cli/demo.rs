//! `wcmi demo`: the README's main command. The whole reproduction grid at the quick preset on
//! MNIST (or on synthetic class-template images when no data directory is found), ending with
//! the results table and the path of the HTML report.
use super::common::GlobalArgs;
use crate::data::{dir, synthetic, Dataset, DatasetName};
use crate::mi::Bound;
use crate::nn::critic::CriticKind;
use crate::reproduce::{self, folder::ReproductionFolder, report, ReproduceConfig};
use crate::train::preset::Preset;
use std::path::PathBuf;
use std::time::Instant;
use tch::Device;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output folder; a second run there reuses what the first finished.
    #[arg(long, default_value = "runs/demo")]
    pub out: PathBuf,
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
    let (data, synthetic_data) = match dir::resolve(global.data_dir.as_deref()) {
        Ok(_) => (global.load_dataset(DatasetName::Mnist, device)?, false),
        Err(_) => {
            eprintln!("no data directory found: using synthetic class-template images");
            (synthetic_dataset().to_device(device), true)
        }
    };
    let config = ReproduceConfig {
        dataset: DatasetName::Mnist,
        preset: Preset::Quick,
        settings: Preset::Quick.settings(),
        trials: 1,
        seed: global.seed,
        mi_bound: Bound::Infonce,
        mi_critic: CriticKind::GlobalCosine,
        synthetic_data,
    };
    let results = reproduce::reproduce(&data, &config, &args.out, device)?;
    print!("{}", report::markdown(&results));
    println!(
        "The quick preset trains for one epoch on 2,000 images: a check of the whole pipeline, \
         not the paper's numbers (see `wcmi reproduce --preset cpu`).\n\
         report: {}\nfinished in {:.0} s",
        ReproductionFolder::new(&args.out).report().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
