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

/// A whole number between 1 and `max`, e.g. how many of something run at once.
pub fn count(name: &'static str, max: u64) -> Result<u64, ConfigError> {
    parsed(name, |v| {
        v.parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("{v:?} is not between 1 and {max}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_is_a_whole_number_in_its_range() {
        // SAFETY (of the test): the variable names are this test's own.
        unsafe {
            std::env::set_var("ACCOUNTS_TEST_COUNT_OK", "5");
            std::env::set_var("ACCOUNTS_TEST_COUNT_BIG", "65");
            std::env::set_var("ACCOUNTS_TEST_COUNT_BAD", "lots");
        }
        assert_eq!(count("ACCOUNTS_TEST_COUNT_OK", 64), Ok(5));
        for name in ["ACCOUNTS_TEST_COUNT_BIG", "ACCOUNTS_TEST_COUNT_BAD"] {
            let e = count(name, 64).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("{name} is invalid: ")),
                "{e}"
            );
        }
        assert_eq!(
            count("ACCOUNTS_TEST_COUNT_UNSET", 64),
            Err(ConfigError::Missing("ACCOUNTS_TEST_COUNT_UNSET"))
        );
    }
}
