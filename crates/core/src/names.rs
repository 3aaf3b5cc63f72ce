//! The naming rules every Switchyard resource follows. A name is parsed once, at the edge, into a
//! type that cannot hold an invalid value; everything downstream can trust it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::StepError;

/// `<customer>-<projectnum>-<env>`, e.g. `xy-0146-prod`: one isolated stack of one customer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Namespace {
    text: String,
    customer_len: usize,
}

impl Namespace {
    /// The customer's short name (`xy`).
    pub fn customer(&self) -> &str {
        &self.text[..self.customer_len]
    }

    /// The global project number (`0146`).
    pub fn project(&self) -> &str {
        &self.text[self.customer_len + 1..self.customer_len + 5]
    }

    /// The environment tier (`dev`, `qa`, `prod`, ...).
    pub fn environment(&self) -> &str {
        &self.text[self.customer_len + 6..]
    }

    /// Production tiers get the stricter defaults (final snapshots on delete).
    pub fn is_production(&self) -> bool {
        matches!(self.environment(), "prod" | "production")
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn is_lower_alnum(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl FromStr for Namespace {
    type Err = StepError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| {
            StepError::InvalidInput(format!(
                "invalid namespace {text:?}: {why}; expected <customer>-<projectnum>-<env> such as xy-0146-prod"
            ))
        };
        let parts: Vec<&str> = text.split('-').collect();
        let [customer, project, env] = parts.as_slice() else {
            return Err(invalid("it must have exactly three parts separated by '-'"));
        };
        if !(2..=12).contains(&customer.len())
            || !customer.starts_with(|c: char| c.is_ascii_lowercase())
            || !is_lower_alnum(customer)
        {
            return Err(invalid(
                "the customer must be 2-12 lowercase letters or digits, starting with a letter",
            ));
        }
        if project.len() != 4 || !project.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the project number must be exactly 4 digits"));
        }
        if !(2..=10).contains(&env.len())
            || !env.starts_with(|c: char| c.is_ascii_lowercase())
            || !is_lower_alnum(env)
        {
            return Err(invalid(
                "the environment must be 2-10 lowercase letters or digits, starting with a letter",
            ));
        }
        Ok(Namespace {
            customer_len: customer.len(),
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Namespace {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The UTC second a snapshot was taken, as it appears in resource names: `20261125-222526`.
/// It versions the data: a database restored from a snapshot carries the snapshot's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

const TIMESTAMP_FORMAT: &str = "%Y%m%d-%H%M%S";

impl Timestamp {
    /// Truncates to the second: names carry no finer precision.
    pub fn from_datetime(at: DateTime<Utc>) -> Self {
        let secs = at.timestamp();
        Timestamp(DateTime::from_timestamp(secs, 0).unwrap_or(at))
    }

    pub fn datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Finds a trailing `-YYYYMMDD-HHMMSS` in a resource name made by Switchyard.
    pub fn from_name_suffix(name: &str) -> Option<Self> {
        let tail = name.get(name.len().checked_sub(15)?..)?;
        let before = name.get(..name.len() - 15)?;
        if !before.ends_with('-') {
            return None;
        }
        tail.parse().ok()
    }
}

impl FromStr for Timestamp {
    type Err = StepError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NaiveDateTime::parse_from_str(text, TIMESTAMP_FORMAT)
            .map(|naive| Timestamp(naive.and_utc()))
            .map_err(|_| {
                StepError::InvalidInput(format!(
                    "invalid timestamp {text:?}: expected YYYYMMDD-HHMMSS in UTC"
                ))
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format(TIMESTAMP_FORMAT))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// RDS identifiers: letters, digits or hyphens, starting with a letter, no `--`, no trailing
/// `-`; at most 63 characters for an instance, 255 for a snapshot.
fn check_rds_identifier(kind: &str, id: &str) -> Result<(), StepError> {
    let max = if kind == "db instance" { 63 } else { 255 };
    let ok = !id.is_empty()
        && id.len() <= max
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.contains("--")
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(StepError::InvalidInput(format!(
            "invalid {kind} identifier {id:?}: RDS needs 1-{max} letters, digits or hyphens, starting with a letter, without '--' or a trailing '-'"
        )))
    }
}

/// The name of a database instance Switchyard restores: `<namespace>-<snapshot timestamp>`.
pub fn db_instance_id(namespace: &Namespace, timestamp: Timestamp) -> Result<String, StepError> {
    let id = format!("{namespace}-{timestamp}");
    check_rds_identifier("db instance", &id)?;
    Ok(id)
}

/// The name of a snapshot Switchyard takes of a namespace's active database.
pub fn snapshot_id(source: &Namespace, timestamp: Timestamp) -> Result<String, StepError> {
    let id = format!("{source}-{timestamp}");
    check_rds_identifier("db snapshot", &id)?;
    Ok(id)
}

/// The snapshot RDS keeps when it deletes a production database, stamped with the deletion's
/// time: a database name can return (the same snapshot promoted again) and be deleted again.
pub fn final_snapshot_id(db_instance_id: &str, at: Timestamp) -> Result<String, StepError> {
    let id = format!("{db_instance_id}-final-{at}");
    check_rds_identifier("db snapshot", &id)?;
    Ok(id)
}

/// A snapshot id given by a user: RDS allows `rds:`-prefixed automated names and ARNs of shared
/// snapshots, so only the gross errors are refused here; RDS itself is the judge of the rest.
pub fn check_given_snapshot_id(id: &str) -> Result<(), StepError> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-:/.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StepError::InvalidInput(format!(
            "invalid snapshot id {id:?}: expected an RDS snapshot identifier or ARN"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_parts() {
        let ns: Namespace = "xy-0146-prod".parse().unwrap();
        assert_eq!(ns.customer(), "xy");
        assert_eq!(ns.project(), "0146");
        assert_eq!(ns.environment(), "prod");
        assert!(ns.is_production());
        let qa: Namespace = "acme42-0007-qa".parse().unwrap();
        assert_eq!(qa.customer(), "acme42");
        assert_eq!(qa.environment(), "qa");
        assert!(!qa.is_production());
    }

    #[test]
    fn namespace_rejects_malformed() {
        for bad in [
            "",
            "xy",
            "xy-0146",
            "xy-0146-prod-2",
            "XY-0146-prod",
            "x-0146-prod",
            "xy-146-prod",
            "xy-01466-prod",
            "xy-0146-p",
            "xy-0146-Prod",
            "1y-0146-prod",
            "xy-0146-9a",
            "xy_z-0146-qa",
            "xy-0146-qa ",
            "averyveryverylongcustomer-0146-qa",
        ] {
            let err = bad.parse::<Namespace>().unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn namespace_serde_validates() {
        let ok: Namespace = serde_json::from_str("\"xy-0146-qa\"").unwrap();
        assert_eq!(ok.as_str(), "xy-0146-qa");
        assert!(serde_json::from_str::<Namespace>("\"nope\"").is_err());
    }

    #[test]
    fn timestamp_round_trips_and_truncates() {
        let at = DateTime::parse_from_rfc3339("2026-11-25T22:25:26.789Z")
            .unwrap()
            .with_timezone(&Utc);
        let ts = Timestamp::from_datetime(at);
        assert_eq!(ts.to_string(), "20261125-222526");
        assert_eq!("20261125-222526".parse::<Timestamp>().unwrap(), ts);
        assert!("2026-11-25".parse::<Timestamp>().is_err());
        assert!("20261340-222526".parse::<Timestamp>().is_err());
    }

    #[test]
    fn timestamp_from_name_suffix() {
        let ts = Timestamp::from_name_suffix("xy-0146-dev-20261125-222526").unwrap();
        assert_eq!(ts.to_string(), "20261125-222526");
        assert!(Timestamp::from_name_suffix("rds:xy-0146-dev-2026-11-25").is_none());
        assert!(Timestamp::from_name_suffix("short").is_none());
        assert!(Timestamp::from_name_suffix("x20261125-222526").is_none());
    }

    #[test]
    fn resource_names() {
        let ns: Namespace = "xy-0146-qa".parse().unwrap();
        let ts: Timestamp = "20261125-222526".parse().unwrap();
        assert_eq!(
            db_instance_id(&ns, ts).unwrap(),
            "xy-0146-qa-20261125-222526"
        );
        assert_eq!(snapshot_id(&ns, ts).unwrap(), "xy-0146-qa-20261125-222526");
        assert_eq!(
            final_snapshot_id("xy-0146-qa-20261125-222526", ts).unwrap(),
            "xy-0146-qa-20261125-222526-final-20261125-222526"
        );
        assert!(check_rds_identifier("db instance", "a--b").is_err());
        assert!(check_rds_identifier("db instance", "ab-").is_err());
        assert!(check_rds_identifier("db instance", &"a".repeat(64)).is_err());
        assert!(check_given_snapshot_id("rds:xy-0146-dev-2026-11-25-03-10").is_ok());
        assert!(check_given_snapshot_id("bad id").is_err());
        assert!(check_given_snapshot_id("").is_err());
    }
}
