//! Mutual information: the critic's bounds (SPEC §2) and the paper's theorems (SPEC §1).
pub mod bounds;
pub mod theory;
