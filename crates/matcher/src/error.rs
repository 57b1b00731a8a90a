//! Typed errors of the matcher.

/// Why a fail2ban regex could not be turned into a [`crate::Regex`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// The pattern is empty (or only whitespace) after tag expansion.
    #[error("cannot add empty regex: {pattern:?}")]
    Empty {
        /// The pattern as given.
        pattern: String,
    },
    /// The expanded pattern is not valid in Python's `re` dialect.
    #[error("unable to compile regular expression {pattern:?}: {message} at position {offset}")]
    Syntax {
        /// The expanded pattern (fail2ban's `getRegex()`).
        pattern: String,
        /// Character offset (in the expanded pattern) where the problem was found.
        offset: usize,
        /// What is wrong, worded like Python's `re.error` where possible.
        message: String,
    },
    /// The pattern uses a Python feature this matcher does not implement.
    #[error("unsupported regular expression {pattern:?}: {message} at position {offset}")]
    Unsupported {
        /// The expanded pattern.
        pattern: String,
        /// Character offset of the unsupported construct.
        offset: usize,
        /// Which feature.
        message: String,
    },
    /// PCRE2 refused the translated pattern.
    #[error(
        "PCRE2 could not compile regular expression {pattern:?} (translated to {translated:?}): {message}"
    )]
    Engine {
        /// The expanded pattern.
        pattern: String,
        /// The PCRE2 pattern it was translated to.
        translated: String,
        /// PCRE2's error message.
        message: String,
    },
}
