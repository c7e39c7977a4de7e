//! Configuration from the environment, read once at start-up. A bad value stops the function
//! before it takes its first event, with a message naming the variable.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A variable that must be set and non-empty.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// A variable that must be set, parsed with `parse`.
pub fn parsed<T>(
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let raw = required(name)?;
    parse(&raw).map_err(|reason| ConfigError::Invalid { name, reason })
}
