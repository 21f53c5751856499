//! Evaluation of trained models: natural accuracy, accuracy under attacks, and representation
//! vulnerability.
pub mod accuracy;
pub mod masking;
pub mod mixture_check;
pub mod robustness;
pub mod vulnerability;
