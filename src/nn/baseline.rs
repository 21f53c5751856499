//! "Baseline-H" (SPEC §3): the encoder and an MLP head trained end to end on labels.
use super::encoder::Encoder;
use super::heads::{Head, HeadKind};
use tch::nn::{self, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub struct BaselineH {
    pub encoder: Encoder,
    pub head: Head,
    num_classes: i64,
}

impl BaselineH {
    pub fn new(vs: &nn::Path, image_shape: [i64; 3], num_classes: i64) -> Self {
        Self {
            encoder: Encoder::new(&(vs / "encoder"), image_shape),
            head: Head::new(&(vs / "head"), HeadKind::Mlp, num_classes),
            num_classes,
        }
    }

    pub fn num_classes(&self) -> i64 {
        self.num_classes
    }
}

impl ModuleT for BaselineH {
    /// Pixels `[N, C, H, W]` → logits.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.head
            .forward_t(&self.encoder.forward_t(x, train), train)
    }
}
