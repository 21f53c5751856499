//! Seeded mini-batches over a list of example indices.
use crate::seed::{self, Stream};
use rand::seq::SliceRandom;
use tch::Tensor;

/// The batches of one epoch, as `Int64` index tensors. With `shuffle`, the order is a function
/// of (seed, epoch) alone, so a resumed run sees the same batches.
pub fn epoch_batches(
    indices: &[i64],
    batch_size: usize,
    shuffle: Option<(u64, u64)>,
    drop_last: bool,
) -> Vec<Tensor> {
    let mut order = indices.to_vec();
    if let Some((seed, epoch)) = shuffle {
        order.shuffle(&mut seed::rng(seed, Stream::Shuffle, epoch));
    }
    order
        .chunks(batch_size.max(1))
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(Tensor::from_slice)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_vecs(batches: &[Tensor]) -> Vec<Vec<i64>> {
        batches
            .iter()
            .map(|b| Vec::<i64>::try_from(b).unwrap())
            .collect()
    }

    #[test]
    fn covers_every_index_once_and_reshuffles_per_epoch() {
        let idx: Vec<i64> = (0..10).collect();
        let plain = as_vecs(&epoch_batches(&idx, 4, None, false));
        assert_eq!(plain, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
        assert_eq!(epoch_batches(&idx, 4, None, true).len(), 2);
        let e0 = as_vecs(&epoch_batches(&idx, 4, Some((1, 0)), false));
        let mut flat: Vec<i64> = e0.concat();
        flat.sort_unstable();
        assert_eq!(flat, idx);
        assert_eq!(e0, as_vecs(&epoch_batches(&idx, 4, Some((1, 0)), false)));
        assert_ne!(e0, as_vecs(&epoch_batches(&idx, 4, Some((1, 1)), false)));
    }
}
