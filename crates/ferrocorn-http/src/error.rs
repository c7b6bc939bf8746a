//! One error type for everything a client can get wrong, with one mapping to a status code.

use std::fmt;

/// A request the server refuses. Every variant maps to exactly one status code in
/// [`HttpError::status`]; the connection is closed after the error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Placeholder until the parser lands.
    Invalid(&'static str),
}

impl HttpError {
    /// The status code sent back for this error.
    pub fn status(&self) -> u16 {
        400
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Invalid(why) => write!(f, "invalid request: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}
