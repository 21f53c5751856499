//! An encoder with a classification head (SPEC §3). Trained end to end with the MLP head it is
//! the supervised "Baseline-H"; on a frozen, separately learned encoder it is a downstream head.
use super::encoder::Encoder;
use super::heads::{Head, HeadKind};
use tch::nn::{self, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub struct EncoderClassifier {
    pub encoder: Encoder,
    pub head: Head,
    num_classes: i64,
    /// A frozen encoder stays in evaluation mode (its batch-norm statistics fixed) even while
    /// the head trains.
    frozen_encoder: bool,
}

impl EncoderClassifier {
    pub fn new(
        vs: &nn::Path,
        image_shape: [i64; 3],
        head: HeadKind,
        num_classes: i64,
        frozen_encoder: bool,
    ) -> Self {
        Self {
            encoder: Encoder::new(&(vs / "encoder"), image_shape),
            head: Head::new(&(vs / "head"), head, num_classes),
            num_classes,
            frozen_encoder,
        }
    }

    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }
}

impl ModuleT for EncoderClassifier {
    /// Pixels `[N, C, H, W]` → logits.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let z = self.encoder.forward_t(x, train && !self.frozen_encoder);
        self.head.forward_t(&z, train)
    }
}

impl super::Classifier for EncoderClassifier {}
