//! Compile-time behaviour of the derives: every error they promise, each pointing at the
//! offending token with a message a user can act on (`trybuild/fail/*.rs` and their
//! `.stderr`), and the accepted syntax (`trybuild/pass/*.rs`).
//!
//! After a deliberate change to a message, regenerate with `TRYBUILD=overwrite cargo test
//! --test trybuild` and read every changed `.stderr`.

#[test]
fn derives() {
    let t = trybuild::TestCases::new();
    t.compile_fail("trybuild/fail/*.rs");
    t.pass("trybuild/pass/*.rs");
}
