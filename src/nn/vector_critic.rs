//! A separable critic for vector data, T(a, b) = f(a)ᵀh(b) with two small MLPs: the critic of the
//! ground-truth tests on correlated Gaussians (its scores have the `[N, N, 1]` layout of SPEC §2).
use super::critic::SeparableCritic;
use super::init;
use tch::nn::{self, Module};
use tch::Tensor;

#[derive(Debug)]
pub struct VectorCritic {
    a_side: nn::Sequential,
    b_side: nn::Sequential,
}

fn mlp(vs: nn::Path, input: i64, hidden: i64, output: i64) -> nn::Sequential {
    nn::seq()
        .add(init::linear(&vs / "fc1", input, hidden))
        .add_fn(|x| x.relu())
        .add(init::linear(&vs / "fc2", hidden, hidden))
        .add_fn(|x| x.relu())
        .add(init::linear(&vs / "fc3", hidden, output))
}

impl VectorCritic {
    pub fn new(vs: &nn::Path, a_dim: i64, b_dim: i64, hidden: i64, embedding: i64) -> Self {
        Self {
            a_side: mlp(vs / "a", a_dim, hidden, embedding),
            b_side: mlp(vs / "b", b_dim, hidden, embedding),
        }
    }
}

impl SeparableCritic for VectorCritic {
    /// `[N, a_dim]` → `[N, embedding, 1]`: a single "position".
    fn input_features(&self, a: &Tensor, _train: bool) -> Tensor {
        self.a_side.forward(a).unsqueeze(1)
    }

    fn representation_features(&self, b: &Tensor, _train: bool) -> Tensor {
        self.b_side.forward(b)
    }
}
