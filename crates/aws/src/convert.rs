//! Small conversions shared by the services.

use chrono::{DateTime, Utc};

/// `None` for instants chrono cannot represent, rather than a panic on a strange response.
pub(crate) fn timestamp(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_seconds_and_nanos() {
        let time = aws_smithy_types::DateTime::from_secs_and_nanos(1_764_108_000, 250_000_000);
        let converted = timestamp(&time).map(|t| t.to_rfc3339());
        assert_eq!(converted.as_deref(), Some("2025-11-25T22:00:00.250+00:00"));
    }

    #[test]
    fn negative_instants_survive() {
        let time = aws_smithy_types::DateTime::from_secs(-1);
        assert_eq!(timestamp(&time).map(|t| t.timestamp()), Some(-1));
    }
}
