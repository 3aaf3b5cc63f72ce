//! Namespaces, `<customer>-<projectnum>-<env>`.

use std::fmt;

/// A namespace taken apart, with the rules Switchyard itself applies (`switchyard-core`'s
/// `Namespace`): a customer of 2-12 lowercase letters or digits starting with a letter, a
/// 4-digit project number, an environment of 2-10 lowercase letters or digits starting with a
/// letter. A policy may demand more (see the `naming` policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Namespace<'a> {
    pub customer: &'a str,
    pub project: &'a str,
    pub environment: &'a str,
}

impl<'a> Namespace<'a> {
    /// `xy-0146-prod` → `xy`, `0146`, `prod`; `None` when it breaks Switchyard's rules.
    pub fn parse(text: &'a str) -> Option<Namespace<'a>> {
        let mut parts = text.split('-');
        let (customer, project, environment) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let word = |s: &str, min: usize, max: usize| {
            (min..=max).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        let ok = word(customer, 2, 12)
            && project.len() == 4
            && project.bytes().all(|b| b.is_ascii_digit())
            && word(environment, 2, 10);
        ok.then_some(Namespace {
            customer,
            project,
            environment,
        })
    }

    /// `prod` and `production`: the tiers Switchyard gives its stricter defaults.
    pub fn is_production(&self) -> bool {
        matches!(self.environment, "prod" | "production")
    }
}

impl fmt::Display for Namespace<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.customer, self.project, self.environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_switchyard() {
        let ns = Namespace::parse("xy-0146-prod").unwrap();
        assert_eq!(
            (ns.customer, ns.project, ns.environment),
            ("xy", "0146", "prod")
        );
        assert!(ns.is_production());
        assert_eq!(ns.to_string(), "xy-0146-prod");
        assert!(Namespace::parse("acme42-0007-qa").is_some());
        for bad in [
            "",
            "xy",
            "xy-0146",
            "xy-0146-prod-2",
            "XY-0146-prod",
            "xy-146-prod",
            "1y-0146-qa",
        ] {
            assert_eq!(Namespace::parse(bad), None, "{bad}");
        }
    }
}
