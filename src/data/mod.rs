//! Datasets: the real image sets (IDX, CIFAR-10 binary or JPEG), synthetic sets with known
//! ground truth, seeded batching, augmentation and the train/validation split.
pub mod augment;
pub mod batches;
pub mod catalog;
pub mod cifar;
pub mod dir;
pub mod fetch;
pub mod idx;
pub mod image_folder;
pub mod official;
pub mod source;
pub mod split;
pub mod synthetic;

pub use catalog::{DatasetName, ThreatSettings};
pub use source::DataSource;

use crate::error::{Error, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// Labelled images stored as `u8` pixels `[N, C, H, W]` (a quarter of the memory of `f32`),
/// converted to `f32` in [0, 1] one batch at a time.
#[derive(Debug)]
pub struct LabelledImages {
    pub images: Tensor,
    pub labels: Tensor,
}

impl LabelledImages {
    pub fn new(images: Tensor, labels: Tensor) -> Self {
        Self { images, labels }
    }

    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `[C, H, W]`.
    pub fn image_shape(&self) -> [i64; 3] {
        let s = self.images.size();
        [s[1], s[2], s[3]]
    }

    pub fn to_device(&self, device: Device) -> Self {
        Self::new(self.images.to_device(device), self.labels.to_device(device))
    }

    /// The first `n` examples (all of them when `n` exceeds the length).
    pub fn head(&self, n: i64) -> Self {
        let n = n.min(self.len());
        Self::new(self.images.narrow(0, 0, n), self.labels.narrow(0, 0, n))
    }

    /// The batch at `index` (an `Int64` tensor): pixels as `f32` in [0, 1] and labels.
    pub fn batch(&self, index: &Tensor) -> (Tensor, Tensor) {
        let index = index.to_device(self.images.device());
        let x = self.images.index_select(0, &index).to_kind(Kind::Float) / 255.0;
        (x, self.labels.index_select(0, &index))
    }

    /// Per-channel pixel mean and standard deviation in [0, 1].
    pub fn channel_stats(&self) -> (Vec<f64>, Vec<f64>) {
        let x = self.images.to_kind(Kind::Double) / 255.0;
        let dims: &[i64] = &[0, 2, 3];
        let mean = x.mean_dim(dims, false, Kind::Double);
        let std = x.std_dim(dims, false, false);
        (to_vec(&mean), to_vec(&std))
    }

    pub fn class_counts(&self, num_classes: i64) -> Vec<i64> {
        let counts = self.labels.bincount::<Tensor>(None, num_classes);
        Vec::<i64>::try_from(&counts.to_device(Device::Cpu)).unwrap_or_default()
    }
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_device(Device::Cpu)).unwrap_or_default()
}

/// A dataset's training and test sets and its class names (label `i` is `classes[i]`).
#[derive(Debug)]
pub struct Dataset {
    pub source: DataSource,
    pub classes: Vec<String>,
    pub train: LabelledImages,
    pub test: LabelledImages,
}

impl Dataset {
    /// A known dataset's sets (test images, synthetic stand-ins), with its class names.
    pub fn named(name: DatasetName, train: LabelledImages, test: LabelledImages) -> Self {
        Self {
            source: DataSource::Named(name),
            classes: name.classes(),
            train,
            test,
        }
    }

    pub fn num_classes(&self) -> i64 {
        self.classes.len() as i64
    }

    /// `[C, H, W]` of every image.
    pub fn image_shape(&self) -> [i64; 3] {
        self.test.image_shape()
    }

    /// Reads an image folder ([`image_folder`]).
    pub fn load_folder(dir: &Path) -> Result<Self> {
        let folder = image_folder::load(dir)?;
        Ok(Self {
            source: DataSource::Folder(dir.to_path_buf()),
            classes: folder.classes,
            train: folder.train,
            test: folder.test,
        })
    }

    /// Loads `name` from `data_dir/<name>/`, verifying every file.
    pub fn load(name: DatasetName, data_dir: &Path) -> Result<Self> {
        let folder = data_dir.join(name.folder());
        if !folder.is_dir() {
            return Err(Error::data(
                &folder,
                "dataset folder not found; name another data directory",
            ));
        }
        let (train, test) = match name {
            DatasetName::Mnist | DatasetName::FashionMnist => (
                idx::load_split(&folder, "train")?,
                idx::load_split(&folder, "t10k")?,
            ),
            DatasetName::Cifar10 => cifar::load(&folder)?,
        };
        Ok(Self::named(name, train, test))
    }

    pub fn to_device(&self, device: Device) -> Self {
        Self {
            source: self.source.clone(),
            classes: self.classes.clone(),
            train: self.train.to_device(device),
            test: self.test.to_device(device),
        }
    }
}

/// Builds a `u8` image tensor from raw pixels, checking the length.
pub(crate) fn images_from_bytes(bytes: &[u8], shape: [i64; 4]) -> Tensor {
    Tensor::from_slice(bytes).view(shape)
}

/// Builds the label tensor, rejecting labels outside `0..num_classes`.
pub(crate) fn labels_from_bytes(path: &Path, bytes: &[u8], num_classes: u8) -> Result<Tensor> {
    if let Some((i, &label)) = bytes.iter().enumerate().find(|(_, &l)| l >= num_classes) {
        return Err(Error::data(
            path,
            format!("label {label} at index {i} is outside 0..{num_classes}"),
        ));
    }
    Ok(Tensor::from_slice(bytes).to_kind(Kind::Int64))
}
