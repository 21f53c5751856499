//! Training loops: the optimiser and supervised (Baseline-H) training.
pub mod adam;
pub mod supervised;

pub use adam::{Adam, AdamConfig};
