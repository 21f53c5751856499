//! CIFAR-10 training augmentation (SPEC §5): random crop with zero padding 4, horizontal flip.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

pub const CROP_PADDING: i64 = 4;

/// Augments a batch `[N, C, H, W]`; each image gets its own crop offset and flip.
pub fn random_crop_flip(x: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
    let [n, _, h, w] = x.size()[..] else {
        panic!("random_crop_flip expects a 4-d batch, got {:?}", x.size());
    };
    let p = CROP_PADDING;
    let padded = x.constant_pad_nd([p, p, p, p]);
    let crops: Vec<Tensor> = (0..n)
        .map(|i| {
            let (dy, dx) = (rng.random_range(0..=2 * p), rng.random_range(0..=2 * p));
            padded.get(i).narrow(1, dy, h).narrow(2, dx, w)
        })
        .collect();
    let cropped = Tensor::stack(&crops, 0);
    let flips: Vec<bool> = (0..n).map(|_| rng.random_bool(0.5)).collect();
    let flip = Tensor::from_slice(&flips)
        .to_device(x.device())
        .to_kind(Kind::Bool)
        .view([n, 1, 1, 1]);
    cropped.flip([3]).where_self(&flip, &cropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn keeps_shape_and_content_up_to_shift_and_flip() {
        let x = Tensor::rand([16, 3, 8, 8], (Kind::Float, tch::Device::Cpu));
        let y = random_crop_flip(&x, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(y.size(), x.size());
        // Every output pixel is either padding (0) or a pixel of the same image.
        for i in 0..16 {
            let values = x.get(i).flatten(0, -1);
            let out = y.get(i).flatten(0, -1);
            let found = out
                .unsqueeze(1)
                .eq_tensor(&values.unsqueeze(0))
                .any_dim(1, false);
            let zero = out.eq(0.0);
            assert!(bool::try_from(found.logical_or(&zero).all()).unwrap());
        }
        assert!(bool::try_from(y.ne_tensor(&x).any()).unwrap());
    }
}
