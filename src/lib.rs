//! Host package of the workspace's integration tests, examples, compile tests and
//! benchmarks. Its docs are the README, so the README's example is compiled by
//! `cargo test`.
#![doc = include_str!("../README.md")]
