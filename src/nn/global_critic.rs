//! A global "encode and dot product" critic (beyond SPEC §3): the image side is the basic
//! encoder with an H-d output, so each score sees the whole image rather than one patch. The
//! local critic's average over patches cannot exceed what one patch tells about z, which caps
//! its estimates for class-like representations (logits); this critic has no such cap.
use super::blocks::ResidualBlock1x1;
use super::critic::{representation_side, SeparableCritic};
use super::encoder::Encoder;
use tch::nn::{self, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub struct GlobalCritic {
    image: Encoder,
    representation_block: ResidualBlock1x1,
    /// With a temperature τ, both sides are scaled to norm 1/√τ, so scores are cos/τ.
    temperature: Option<f64>,
}

impl GlobalCritic {
    pub fn new(
        vs: &nn::Path,
        image_shape: [i64; 3],
        representation_dim: i64,
        width: i64,
        temperature: Option<f64>,
    ) -> Self {
        Self {
            image: Encoder::with_output(&(vs / "image"), image_shape, width),
            representation_block: ResidualBlock1x1::new(
                &(vs / "representation"),
                representation_dim,
                width,
            ),
            temperature,
        }
    }

    fn scaled(&self, features: Tensor) -> Tensor {
        match self.temperature {
            Some(tau) => {
                let norm = features.norm_scalaropt_dim(2.0, [-1i64].as_slice(), true);
                features / (norm.clamp_min(1e-12) * tau.sqrt())
            }
            None => features,
        }
    }
}

impl SeparableCritic for GlobalCritic {
    /// Image side: `[N, C, H, W]` → `[N, 1, width]` (one position).
    fn input_features(&self, x: &Tensor, train: bool) -> Tensor {
        self.scaled(self.image.forward_t(x, train)).unsqueeze(1)
    }

    fn representation_features(&self, z: &Tensor, train: bool) -> Tensor {
        self.scaled(representation_side(&self.representation_block, z, train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn scores_every_pair_once() {
        let vs = nn::VarStore::new(Device::Cpu);
        let critic = GlobalCritic::new(&vs.root(), [1, 28, 28], 10, 32, None);
        let x = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
        let z = Tensor::randn([6, 10], (Kind::Float, Device::Cpu));
        assert_eq!(critic.scores(&x, &z, false).size(), vec![6, 6, 1]);
    }

    #[test]
    fn cosine_scores_are_cosines_over_the_temperature() {
        let vs = nn::VarStore::new(Device::Cpu);
        let critic = GlobalCritic::new(&vs.root(), [1, 28, 28], 10, 32, Some(0.25));
        let x = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
        let z = Tensor::randn([6, 10], (Kind::Float, Device::Cpu));
        let u = critic.scores(&x, &z, false).squeeze_dim(2);
        let a = critic.representation_features(&z, false);
        let b = critic.input_features(&x, false).squeeze_dim(1);
        let cosine = a.matmul(&b.tr())
            / a.norm_scalaropt_dim(2.0, [1i64].as_slice(), true)
            / b.norm_scalaropt_dim(2.0, [1i64].as_slice(), true).tr();
        let error = (&u - cosine / 0.25).abs().max().double_value(&[]);
        assert!(error < 1e-4, "scores differ from cos/τ by {error}");
        assert!(u.abs().max().double_value(&[]) <= 4.0 + 1e-4);
    }
}
