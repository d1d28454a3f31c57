//! The context that collects every error of one derive, so one build reports every
//! mistake, each spanned on the offending tokens.

use std::cell::RefCell;
use std::fmt::Display;

/// Errors met while parsing and checking an input.
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an error spanned on `span`.
    pub fn error(&self, span: proc_macro2::Span, message: impl Display) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new(span, message.to_string()));
    }

    /// Records an error of `syn` (or of `darling`, converted).
    pub fn syn_error(&self, err: impl Into<syn::Error>) {
        self.errors.borrow_mut().push(err.into());
    }

    /// The errors, as one token stream of `compile_error!`s, or nothing when there are
    /// none.
    pub fn into_result(self) -> Result<(), proc_macro2::TokenStream> {
        let errors = self.errors.into_inner();
        if errors.is_empty() {
            return Ok(());
        }
        Err(errors.iter().map(syn::Error::to_compile_error).collect())
    }
}
