//! Synthetic data with known ground truth (SPEC §1), sampled with a seeded generator.
use super::LabelledImages;
use crate::seed::{self, Stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use tch::{Kind, Tensor};

fn normals(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect()
}

/// The binary Gaussian mixture of Theorem 3.2: y uniform on {−1, +1}, x ~ N(yθ, diag(σ²)).
#[derive(Clone, Debug)]
pub struct GaussianMixture {
    pub theta: Vec<f64>,
    /// Per-coordinate standard deviations (Σ is diagonal).
    pub sigma: Vec<f64>,
}

impl GaussianMixture {
    /// Returns x `[n, d]` (`f32`) and the class `[n]` (`Int64`, 0 for y = −1, 1 for y = +1).
    pub fn sample(&self, n: usize, seed: u64) -> (Tensor, Tensor) {
        let d = self.theta.len();
        let mut rng = seed::rng(seed, Stream::Synthetic, 0);
        let classes: Vec<i64> = (0..n).map(|_| rng.random_range(0..2)).collect();
        let noise = normals(&mut rng, n * d);
        let x: Vec<f32> = (0..n * d)
            .map(|k| {
                let (i, j) = (k / d, k % d);
                let y = if classes[i] == 1 { 1.0 } else { -1.0 };
                (y * self.theta[j] + self.sigma[j] * noise[k] as f64) as f32
            })
            .collect();
        (
            Tensor::from_slice(&x).view([n as i64, d as i64]),
            Tensor::from_slice(&classes),
        )
    }
}

/// Pairs (x, y) of standard normals in ℝ^d with correlation ρ per coordinate pair:
/// y = ρx + √(1−ρ²)·ξ. The mutual information is exactly −(d/2)·ln(1−ρ²) nats.
#[derive(Clone, Copy, Debug)]
pub struct CorrelatedGaussians {
    pub dim: usize,
    pub rho: f64,
}

impl CorrelatedGaussians {
    pub fn true_mi(&self) -> f64 {
        -(self.dim as f64) / 2.0 * (1.0 - self.rho * self.rho).ln()
    }

    /// The ρ that gives `mi` nats in dimension `dim`.
    pub fn with_mi(dim: usize, mi: f64) -> Self {
        let rho = (1.0 - (-2.0 * mi / dim as f64).exp()).sqrt();
        Self { dim, rho }
    }

    pub fn sample(&self, n: usize, seed: u64) -> (Tensor, Tensor) {
        let mut rng = seed::rng(seed, Stream::Synthetic, 1);
        let shape = [n as i64, self.dim as i64];
        let x = Tensor::from_slice(&normals(&mut rng, n * self.dim)).view(shape);
        let noise = Tensor::from_slice(&normals(&mut rng, n * self.dim)).view(shape);
        let y = &x * self.rho + noise * (1.0 - self.rho * self.rho).sqrt();
        (x, y)
    }
}

/// Small labelled images for tests and the data-free demo: each class is a fixed random template
/// in [0, 1], and each image is its class template plus Gaussian noise, quantised to bytes.
pub fn class_templates(
    n: usize,
    shape: [i64; 3],
    classes: i64,
    noise: f64,
    seed: u64,
) -> LabelledImages {
    let mut rng = seed::rng(seed, Stream::Synthetic, 2);
    let pixels = (shape[0] * shape[1] * shape[2]) as usize;
    let templates: Vec<f64> = (0..classes as usize * pixels)
        .map(|_| rng.random::<f64>())
        .collect();
    let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    let bytes: Vec<u8> = labels
        .iter()
        .flat_map(|&c| {
            let start = c as usize * pixels;
            let z_values = normals(&mut rng, pixels);
            templates[start..start + pixels]
                .iter()
                .zip(z_values)
                .map(|(t, z)| ((t + z as f64 * noise).clamp(0.0, 1.0) * 255.0).round() as u8)
                .collect::<Vec<_>>()
        })
        .collect();
    let images = Tensor::from_slice(&bytes).view([n as i64, shape[0], shape[1], shape[2]]);
    LabelledImages::new(images, Tensor::from_slice(&labels).to_kind(Kind::Int64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlated_gaussians_have_the_requested_correlation() {
        let g = CorrelatedGaussians::with_mi(4, 1.0);
        assert!((g.true_mi() - 1.0).abs() < 1e-12);
        let (x, y) = g.sample(20000, 0);
        let corr = (&x * &y).mean(Kind::Float).double_value(&[]);
        assert!((corr - g.rho).abs() < 0.02, "corr {corr} vs rho {}", g.rho);
    }

    #[test]
    fn mixture_means_are_plus_minus_theta() {
        let m = GaussianMixture {
            theta: vec![1.0, -2.0],
            sigma: vec![0.5, 1.0],
        };
        let (x, c) = m.sample(20000, 1);
        let sign = c.to_kind(Kind::Float) * 2.0 - 1.0;
        let mean = (x * sign.unsqueeze(1)).mean_dim(0, false, Kind::Float);
        assert!((mean.double_value(&[0]) - 1.0).abs() < 0.02);
        assert!((mean.double_value(&[1]) + 2.0).abs() < 0.04);
    }

    #[test]
    fn class_templates_are_seeded_and_labelled() {
        let a = class_templates(50, [1, 4, 4], 3, 0.1, 9);
        let b = class_templates(50, [1, 4, 4], 3, 0.1, 9);
        assert!(a.images.equal(&b.images) && a.labels.equal(&b.labels));
        assert_eq!(a.class_counts(3).iter().sum::<i64>(), 50);
    }
}
