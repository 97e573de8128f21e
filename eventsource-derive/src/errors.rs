//! An accumulator of compile errors.
//!
//! Parsing and validation never stop at the first problem: every problem becomes a
//! [`syn::Error`] at the offending span and is pushed here, and the derive reports them all
//! at once through [`syn::Error::combine`], so one compile shows every mistake.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects errors; [`Errors::finish`] turns them into one combined [`syn::Error`].
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// An empty collector.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an error (which may itself hold several).
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Adds an error at `span`.
    pub(crate) fn at(&mut self, span: Span, message: impl Display) {
        self.push(syn::Error::new(span, message));
    }

    /// Adds an error covering the tokens of `node` (from its first token to its last).
    pub(crate) fn spanned(&mut self, node: &dyn ToTokens, message: impl Display) {
        self.push(syn::Error::new_spanned(node.to_token_stream(), message));
    }

    /// Whether no error was pushed.
    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// `Ok(value)` when no error was pushed, else every error combined.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.combined {
            Some(error) => Err(error),
            None => Ok(value),
        }
    }
}
