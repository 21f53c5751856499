//! `wcmi data fetch NAME` and `wcmi data info NAME`.
use super::common::GlobalArgs;
use crate::data::image_folder::shape_text;
use crate::data::{dir, fetch, DataSource, DatasetName};
use crate::report::table;
use clap::Subcommand;
use tch::Device;

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download the official files of a dataset and verify their checksums.
    Fetch {
        /// mnist, fashion-mnist or cifar10.
        name: DatasetName,
    },
    /// Print split sizes, class counts and pixel statistics.
    Info {
        /// mnist, fashion-mnist, cifar10, or an image folder (`DIR/train/<class>/*.png|jpg`,
        /// `DIR/test/<class>/…`).
        name: DataSource,
    },
}

pub fn run(command: DataCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    match command {
        DataCommand::Fetch { name } => {
            let folder = fetch::fetch(name, &dir::for_download(global.data_dir.as_deref()))?;
            println!("{name}: verified files in {}", folder.display());
        }
        DataCommand::Info { name } => {
            let data = global.load_source(&name, Device::Cpu)?;
            let classes = data.num_classes();
            let fmt = |v: Vec<f64>| {
                v.iter()
                    .map(|x| format!("{x:.4}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let rows: Vec<Vec<String>> = [("train", &data.train), ("test", &data.test)]
                .into_iter()
                .map(|(split, set)| {
                    let (mean, std) = set.channel_stats();
                    vec![
                        split.to_string(),
                        set.len().to_string(),
                        shape_text(set.image_shape()),
                        fmt(mean),
                        fmt(std),
                        format!("{:?}", set.class_counts(classes)),
                    ]
                })
                .collect();
            println!("{name}: {classes} classes ({})", data.classes.join(", "));
            print!(
                "{}",
                table::markdown(
                    &[
                        "split",
                        "images",
                        "shape",
                        "pixel mean",
                        "pixel std",
                        "class counts"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(())
}
