//! Validation of domain objects before anything is stored. Errors name the field so that an API or CLI
//! message can say exactly what to fix.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// Dotted path of the offending field, e.g. `events[3].item_id`.
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefix the field path, e.g. `item_id` becomes `events[3].item_id`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

pub trait Validate {
    fn validate(&self) -> Result<(), ValidationError>;
}

pub const MAX_ID_BYTES: usize = 256;

/// Ids are opaque strings, but they appear in URLs and logs, so they must be non-empty, bounded and free
/// of control characters.
pub fn check_id(field: &str, id: &str) -> Result<(), ValidationError> {
    if id.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ValidationError::new(
            field,
            format!(
                "is {} bytes long; ids are at most {MAX_ID_BYTES} bytes",
                id.len()
            ),
        ));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

pub fn check_labels(field: &str, labels: &[String], max: usize) -> Result<(), ValidationError> {
    if labels.len() > max {
        return Err(ValidationError::new(
            field,
            format!("has {} entries; at most {max} are allowed", labels.len()),
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        check_id(&format!("{field}[{i}]"), label)?;
    }
    Ok(())
}

pub fn check_text(field: &str, text: &str, max_bytes: usize) -> Result<(), ValidationError> {
    if text.len() > max_bytes {
        return Err(ValidationError::new(
            field,
            format!(
                "is {} bytes long; at most {max_bytes} are allowed",
                text.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(check_id("id", "item-1").is_ok());
        assert!(check_id("id", "").is_err());
        assert!(check_id("id", "a\nb").is_err());
        assert!(check_id("id", &"x".repeat(300)).is_err());
    }

    #[test]
    fn within_builds_a_path() {
        let e = ValidationError::new("item_id", "must not be empty").within("events[3]");
        assert_eq!(e.to_string(), "events[3].item_id: must not be empty");
    }
}
