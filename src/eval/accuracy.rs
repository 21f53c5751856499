//! Natural accuracy of a classifier, in evaluation mode and without autograd.
use crate::data::{batches::epoch_batches, LabelledImages};
use crate::nn::Classifier;
use tch::{Kind, Tensor};

/// Number of correct predictions in a batch of logits.
pub fn correct(logits: &Tensor, labels: &Tensor) -> i64 {
    logits
        .argmax(-1, false)
        .eq_tensor(labels)
        .sum(Kind::Int64)
        .int64_value(&[])
}

/// Accuracy in [0, 1] on `indices` of `data` (all of it when `None`).
pub fn accuracy(
    model: &dyn Classifier,
    data: &LabelledImages,
    indices: Option<&[i64]>,
    batch_size: usize,
) -> f64 {
    let all: Vec<i64>;
    let indices = match indices {
        Some(i) => i,
        None => {
            all = (0..data.len()).collect();
            &all
        }
    };
    if indices.is_empty() {
        return f64::NAN;
    }
    let hits: i64 = tch::no_grad(|| {
        epoch_batches(indices, batch_size, None, false)
            .iter()
            .map(|idx| {
                let (x, y) = data.batch(idx);
                correct(&model.forward_t(&x, false), &y)
            })
            .sum()
    });
    hits as f64 / indices.len() as f64
}
