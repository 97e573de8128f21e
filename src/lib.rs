//! Host package of the workspace tests, examples and benches.
