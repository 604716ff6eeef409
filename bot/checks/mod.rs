//! Offline checks that replay content through the real engine: `kb check` with its answer
//! tests, and `flows check` with its transcripts.
//!
//! They sit above both `kb` and `engine` (they need both), so neither of those has to
//! know about the other's tests.

pub mod answers;
pub mod flows;
pub mod kb;
