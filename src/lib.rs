//! Host package of the workspace's integration tests, examples, compile tests and
//! benchmarks. Its docs are the README, so the README's example is compiled by
//! `cargo test`.
#![doc = include_str!("../README.md")]

/// The user guides (`docs/*.md`), compiled here so that every code sample in them is
/// tested by `cargo test --workspace`.
pub mod guide {
    #[doc = include_str!("../docs/snapshotting.md")]
    pub mod snapshotting {}
    #[doc = include_str!("../docs/reliability.md")]
    pub mod reliability {}
    #[doc = include_str!("../docs/schema-evolution.md")]
    pub mod schema_evolution {}
    #[doc = include_str!("../docs/choosing.md")]
    pub mod choosing {}
    #[doc = include_str!("../docs/metrics.md")]
    pub mod metrics {}
    #[doc = include_str!("../docs/scaling.md")]
    pub mod scaling {}
}
