//! Models trained anywhere, loaded from TorchScript (`torch.jit.save`), so that wcmi measures a
//! PyTorch user's own representation (issue 18; the paper's §6.1 measures such models).
//!
//! The convention: `forward(x)` returns logits; any exported method (by default `encode`)
//! returns a representation, flattened here to one vector per image; inputs are NCHW in
//! [0, 1] and any normalisation lives inside the model. The model is put in evaluation mode
//! and its parameters are frozen: attacks need gradients with respect to the input only.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tch::{CModule, Device, IValue, Kind, Tensor};

/// The method that gives a TorchScript model's representation unless another is named.
pub const DEFAULT_METHOD: &str = "encode";

/// The layer name that selects a TorchScript model's `forward` (its logits).
pub const LOGITS: &str = "logits";

#[derive(Debug)]
pub struct ScriptModel {
    module: CModule,
    path: PathBuf,
    /// Where it was loaded (and where its probe images go).
    device: Device,
}

/// What a value returned by a model is, for an error message.
fn kind_of(value: &IValue) -> &'static str {
    match value {
        IValue::Tensor(_) => "a tensor",
        IValue::Tuple(_) => "a tuple",
        IValue::TensorList(_) | IValue::GenericList(_) => "a list",
        IValue::GenericDict(_) => "a dict",
        IValue::None => "None",
        _ => "a value that is not a tensor",
    }
}

impl ScriptModel {
    /// Loads `path` onto `device`, in evaluation mode with frozen parameters.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(path, "no such file"));
        }
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            Error::model(
                path,
                format!(
                    "is not a TorchScript model (torch.jit.save): {}",
                    first_line(&e)
                ),
            )
        })?;
        module.set_eval();
        for (_, parameter) in module
            .named_parameters()
            .map_err(|e| Error::model(path, first_line(&e)))?
        {
            let _ = parameter.set_requires_grad(false);
        }
        Ok(Self {
            module,
            path: path.to_path_buf(),
            device,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The output of `method` (`forward` for [`LOGITS`]) for images `x`, as [N, width].
    pub fn layer(&self, method: &str, x: &Tensor) -> Result<Tensor> {
        let input = [IValue::Tensor(x.shallow_clone())];
        let output = if method == LOGITS {
            self.module.forward_is(&input)
        } else {
            self.module.method_is(method, &input)
        }
        .map_err(|e| {
            Error::model(
                &self.path,
                format!(
                    "method {} fails on inputs of shape {:?}: {}",
                    self.method_name(method),
                    x.size(),
                    first_line(&e)
                ),
            )
        })?;
        match output {
            IValue::Tensor(t) if t.dim() >= 1 && t.size()[0] == x.size()[0] => {
                Ok(t.to_kind(Kind::Float).flatten(1, -1))
            }
            IValue::Tensor(t) => Err(Error::model(
                &self.path,
                format!(
                    "method {} returns shape {:?} for {} images; it must return one row per image",
                    self.method_name(method),
                    t.size(),
                    x.size()[0]
                ),
            )),
            other => Err(Error::model(
                &self.path,
                format!(
                    "method {} returns {}, not a tensor",
                    self.method_name(method),
                    kind_of(&other)
                ),
            )),
        }
    }

    /// The width of layer `method` on images of `image_shape`, found by running two blank
    /// images through it: a check that the model takes such images and follows the convention.
    pub fn layer_width(&self, method: &str, image_shape: [i64; 3]) -> Result<i64> {
        let [c, h, w] = image_shape;
        let probe = Tensor::zeros([2, c, h, w], (Kind::Float, self.device));
        let out = tch::no_grad(|| self.layer(method, &probe))?;
        Ok(out.size()[1])
    }

    /// Checks that `forward` gives `num_classes` logits per image of `image_shape`.
    pub fn check_classifier(&self, image_shape: [i64; 3], num_classes: i64) -> Result<()> {
        let width = self.layer_width(LOGITS, image_shape)?;
        if width != num_classes {
            return Err(Error::model(
                &self.path,
                format!(
                    "forward returns {width} logits per image; the dataset has {num_classes} classes"
                ),
            ));
        }
        Ok(())
    }

    fn method_name(&self, method: &str) -> String {
        if method == LOGITS {
            "forward".to_string()
        } else {
            format!("`{method}`")
        }
    }
}

/// The logits of a model checked by [`ScriptModel::check_classifier`].
impl tch::nn::ModuleT for ScriptModel {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        self.layer(LOGITS, xs)
            .expect("forward was checked on the dataset's images when the model was chosen")
    }
}

/// libtorch's messages carry a C++ backtrace after their first line.
fn first_line(error: &tch::TchError) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or("unknown error")
        .to_string()
}

impl super::Classifier for ScriptModel {}
