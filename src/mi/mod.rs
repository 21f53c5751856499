//! Mutual information: the critic's bounds (SPEC §2), critic training, normal and worst-case
//! estimation (SPEC §4), and the paper's theorems (SPEC §1).
pub mod bounds;
pub mod critic_training;
pub mod theory;
pub mod worst_case;

pub use bounds::Bound;
pub use critic_training::{CriticConfig, MiEstimate};
