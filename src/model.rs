//! A model to measure: a wcmi checkpoint, or a TorchScript file trained anywhere
//! ([`crate::nn::script`]). Evaluation, MI estimates and the vulnerability take either through
//! its classifier (pixels → logits) and its named layers (pixels → representation).
use crate::checkpoint::{self, LoadedModel};
use crate::data::image_folder::shape_text;
use crate::data::{Dataset, DatasetName};
use crate::error::{Error, Result};
use crate::nn::folded::{FoldedClassifier, FoldedEncoder};
use crate::nn::script::{self, ScriptModel};
use crate::nn::Classifier;
use std::path::{Path, PathBuf};
use tch::nn::ModuleT;
use tch::{Device, Tensor};

pub enum Model {
    Native {
        loaded: Box<LoadedModel>,
        path: PathBuf,
        /// Its network with batch norms folded, for evaluations and MI estimates.
        folded: Folded,
    },
    Script(ScriptModel),
}

/// A checkpoint's network in evaluation mode with batch norms folded: what evaluations and MI
/// estimates attack, hundreds of passes each (tested against the plain forward in `nn::folded`).
pub enum Folded {
    Classifier(FoldedClassifier),
    /// A network without a head (an encoder trained with its critic).
    Encoder(FoldedEncoder),
}

impl Folded {
    fn encoder(&self) -> &FoldedEncoder {
        match self {
            Folded::Classifier(classifier) => classifier.encoder(),
            Folded::Encoder(encoder) => encoder,
        }
    }
}

/// A representation of a model: its width and the map from pixels to it.
pub struct Layer<'a> {
    pub width: i64,
    forward: Box<dyn Fn(&Tensor) -> Tensor + 'a>,
}

impl Layer<'_> {
    /// The representation of images `x` (gradients flow to `x`).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        (self.forward)(x)
    }
}

impl Model {
    /// A wcmi checkpoint (`model.safetensors` of a training run).
    pub fn checkpoint(path: &Path, device: Device) -> Result<Self> {
        let loaded = checkpoint::load_model(path, device)?;
        Ok(Model::Native {
            folded: match loaded.network.folded_classifier() {
                Ok(classifier) => Folded::Classifier(classifier),
                Err(_) => Folded::Encoder(FoldedEncoder::new(loaded.network.encoder())),
            },
            loaded: Box::new(loaded),
            path: path.to_path_buf(),
        })
    }

    /// A TorchScript file.
    pub fn torchscript(path: &Path, device: Device) -> Result<Self> {
        ScriptModel::load(path, device).map(Model::Script)
    }

    pub fn path(&self) -> &Path {
        match self {
            Model::Native { path, .. } => path,
            Model::Script(model) => model.path(),
        }
    }

    /// What the model is, for tables and results.
    pub fn name(&self) -> String {
        match self {
            Model::Native { loaded, .. } => loaded.info.model.name().to_string(),
            Model::Script(model) => format!(
                "torchscript {}",
                model.path().file_name().map_or_else(
                    || model.path().display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            ),
        }
    }

    /// The dataset the model was trained on, when it says (TorchScript files do not).
    pub fn dataset(&self) -> Option<DatasetName> {
        match self {
            Model::Native { loaded, .. } => loaded.info.dataset,
            Model::Script(_) => None,
        }
    }

    /// The layer measured unless another is named: a checkpoint's encoder, a TorchScript
    /// model's `encode` method.
    pub fn default_layer(&self) -> &'static str {
        match self {
            Model::Native { .. } => "encoder",
            Model::Script(_) => script::DEFAULT_METHOD,
        }
    }

    /// Checks that the model takes `data`'s images.
    fn check_images(&self, data: &Dataset) -> Result<()> {
        if let Model::Native { loaded, path, .. } = self {
            let expected = loaded.info.model.image_shape();
            if expected != data.image_shape() {
                return Err(Error::checkpoint(
                    path,
                    format!(
                        "expects {} images, but {} has {}",
                        shape_text(expected),
                        data.source,
                        shape_text(data.image_shape())
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The classifier (pixels → logits) for `data`'s images, checked to give one logit per
    /// class.
    pub fn classifier(&self, data: &Dataset) -> Result<&dyn Classifier> {
        self.check_images(data)?;
        match self {
            Model::Native {
                loaded,
                path,
                folded,
                ..
            } => {
                let classes = loaded
                    .network
                    .layer_width("logits")
                    .unwrap_or(data.num_classes());
                if classes != data.num_classes() {
                    return Err(Error::checkpoint(
                        path,
                        format!(
                            "gives {classes} logits, but {} has {} classes",
                            data.source,
                            data.num_classes()
                        ),
                    ));
                }
                match folded {
                    Folded::Classifier(classifier) => Ok(classifier),
                    Folded::Encoder(_) => Ok(loaded.network.classifier()?),
                }
            }
            Model::Script(model) => {
                model.check_classifier(data.image_shape(), data.num_classes())?;
                Ok(model)
            }
        }
    }

    /// Layer `name` on `data`'s images: `encoder` or `logits` of a checkpoint; `logits`
    /// (forward) or any method of a TorchScript model.
    pub fn layer<'a>(&'a self, name: &'a str, data: &Dataset) -> Result<Layer<'a>> {
        self.check_images(data)?;
        Ok(match self {
            Model::Native { loaded, folded, .. } => {
                let network = &loaded.network;
                let width = network.layer_width(name)?;
                let forward: Box<dyn Fn(&Tensor) -> Tensor + 'a> = match (name, folded) {
                    ("encoder", _) => Box::new(move |x| folded.encoder().forward(x)),
                    ("logits", Folded::Classifier(classifier)) => {
                        Box::new(move |x| classifier.forward_t(x, false))
                    }
                    _ => Box::new(move |x| network.layer(name, x).expect("layer checked")),
                };
                Layer { width, forward }
            }
            Model::Script(model) => Layer {
                width: model.layer_width(name, data.image_shape())?,
                forward: Box::new(move |x| model.layer(name, x).expect("layer checked")),
            },
        })
    }
}
