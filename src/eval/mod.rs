//! Evaluation of trained models: natural accuracy, and accuracy under attacks.
pub mod accuracy;
pub mod robustness;
