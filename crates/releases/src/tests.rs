use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

fn release(version: &str, backport_of: Option<&str>) -> Release {
    Release {
        version: v(version),
        image: format!("registry.example.com/app:{version}"),
        migration: vec!["migrate".into(), version.into()],
        backport_of: backport_of.map(v),
        migration_minutes: None,
    }
}

/// The article's figure: 1.0.x, 1.1.x, 1.2.x and 2.0.x, a fix in 1.0.1 carried into 1.1.0 by
/// the main line, and a fix made in 2.0.1 backported to 1.1.2 and 1.2.1.
fn seed_catalog() -> ReleaseCatalog {
    ReleaseCatalog::new(vec![
        release("1.0.0", None),
        release("1.0.1", None),
        release("1.1.0", None),
        release("1.1.1", None),
        release("1.1.2", Some("2.0.1")),
        release("1.2.0", None),
        release("1.2.1", Some("2.0.1")),
        release("2.0.0", None),
        release("2.0.1", None),
    ])
    .unwrap()
}

fn versions(plan: &UpgradePlan) -> Vec<String> {
    plan.hops.iter().map(|h| h.version.to_string()).collect()
}

#[test]
fn the_articles_example_goes_through_the_1_1_line() {
    let catalog = seed_catalog();
    let plan = catalog.plan("1.0.1", "1.2.0").unwrap();
    assert_eq!(versions(&plan), ["1.1.0", "1.2.0"]);
    assert_eq!(plan.describe(), "1.0.1 → 1.1.0 → 1.2.0");

    // From a 1.1.x tenant, its own line's latest patch first: the fix comes from 1.1.2, and
    // 2.0.1 finds it there.
    let plan = catalog.plan("1.1.0", "2.0.1").unwrap();
    assert_eq!(
        versions(&plan),
        ["1.1.1", "1.1.2", "1.2.0", "2.0.0", "2.0.1"]
    );
    let last = plan.hops.last().unwrap();
    assert_eq!(last.already_applied_by, Some(v("1.1.2")));
    assert_eq!(plan.hops[1].already_applied_by, None);
}

#[test]
fn a_target_in_the_own_line_takes_its_patches() {
    let catalog = seed_catalog();
    assert_eq!(
        versions(&catalog.plan("1.1.0", "1.1.2").unwrap()),
        ["1.1.1", "1.1.2"]
    );
    assert!(catalog.plan("2.0.1", "2.0.1").unwrap().hops.is_empty());
}

#[test]
fn a_backport_the_starting_schema_has_is_marked_applied() {
    let catalog = seed_catalog();
    // A tenant on 1.2.1 already has 2.0.1's change.
    let plan = catalog.plan("1.2.1", "2.0.1").unwrap();
    assert_eq!(versions(&plan), ["2.0.0", "2.0.1"]);
    assert_eq!(plan.hops[1].already_applied_by, Some(v("1.2.1")));
    // One on 1.2.0 does not.
    let plan = catalog.plan("1.2.0", "2.0.1").unwrap();
    assert_eq!(plan.hops[1].already_applied_by, None);
}

#[test]
fn downgrades_and_unknown_versions_are_named_errors() {
    let catalog = seed_catalog();
    assert!(matches!(
        catalog.plan("2.0.0", "1.2.0"),
        Err(PlanError::Downgrade { .. })
    ));
    assert_eq!(
        catalog.plan("1.0.1", "1.3.0").unwrap_err().to_string(),
        "version 1.3.0 is not in the release catalog"
    );
    assert!(catalog.plan("latest", "1.2.0").is_err());
    assert_eq!(
        versions(&catalog.plan("v1.0.1", "v1.1.0").unwrap()),
        ["1.1.0"]
    );
}

#[test]
fn a_backport_that_points_forward_is_refused() {
    let err = ReleaseCatalog::new(vec![
        release("1.0.0", None),
        release("1.0.1", None),
        release("1.1.0", None),
        release("1.1.1", Some("1.0.1")),
    ])
    .unwrap_err();
    assert!(
        err.to_string().contains("BackportPointsForward: 1.1.1"),
        "{err}"
    );
}

#[test]
fn every_problem_is_named_at_once() {
    let mut bad_image = release("2.0.0", None);
    bad_image.image = "two words".into();
    let err = ReleaseCatalog::new(vec![
        release("1.0.0", None),
        release("1.0.0", None),
        release("1.1.1", None),
        release("1.0.1", Some("3.0.0")),
        release("1.0.2", Some("1.1.1")),
        bad_image,
    ])
    .unwrap_err();
    let CatalogError::Invalid(problems) = &err else {
        panic!("{err}")
    };
    let names: BTreeSet<&str> = problems.iter().map(CatalogProblem::name).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "DuplicateRelease",
            "UnorderedReleaseLines",
            "BackportOfUnknownRelease",
            "InvalidImage",
        ]),
        "{err}"
    );
    // 1.0.2 → 1.1.1 is a proper backport by direction, so only its line's missing .0 shows.
    assert!(
        err.to_string().contains("line 1.1 starts at 1.1.1"),
        "{err}"
    );
}

#[test]
fn a_backport_of_a_backport_names_the_original() {
    let err = ReleaseCatalog::new(vec![
        release("1.0.0", None),
        release("1.0.1", Some("1.1.1")),
        release("1.1.0", None),
        release("1.1.1", Some("2.0.0")),
        release("2.0.0", None),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("name 2.0.0"), "{err}");
}

#[test]
fn the_json_form_round_trips_and_is_validated_on_read() {
    let catalog = seed_catalog();
    let text = catalog.to_json();
    assert_eq!(ReleaseCatalog::from_json(&text).unwrap(), catalog);
    let parsed: Result<ReleaseCatalog, _> =
        serde_json::from_str(r#"{"releases": [{"version": "1.0.1", "image": "app:1.0.1"}]}"#);
    assert!(
        parsed
            .unwrap_err()
            .to_string()
            .contains("UnorderedReleaseLines")
    );
    assert!(matches!(
        ReleaseCatalog::from_json(r#"{"releases": [{"version": "1.0.0", "image": "a", "x": 1}]}"#),
        Err(CatalogError::Malformed(_))
    ));
}

#[test]
fn adding_a_release_revalidates() {
    let catalog = seed_catalog();
    let grown = catalog.with(release("2.1.0", None)).unwrap();
    assert_eq!(grown.latest().unwrap().version, v("2.1.0"));
    assert!(catalog.with(release("2.2.1", None)).is_err());
    // Replacing an entry keeps one per version.
    let mut changed = release("2.0.1", None);
    changed.image = "registry.example.com/app:2.0.1-fixed".into();
    let replaced = catalog.with(changed).unwrap();
    assert_eq!(replaced.releases().len(), catalog.releases().len());
}

/// Checks every property a plan from `from` to `to` must have.
fn check_plan(catalog: &ReleaseCatalog, from: &Release, to: &Release) {
    let plan = catalog
        .plan(&from.version.to_string(), &to.version.to_string())
        .unwrap();
    // Strictly ascending, inside (from, to], ending at the target.
    let mut previous = &from.version;
    for hop in &plan.hops {
        assert!(hop.version > *previous, "{}", plan.describe());
        assert!(catalog.get(&hop.version).is_some());
        previous = &hop.version;
    }
    assert_eq!(previous, &to.version, "{}", plan.describe());
    // Each hop is the rule's: the own line, a main-line .0, or the target's line.
    for hop in &plan.hops {
        let line = Line::of(&hop.version);
        assert!(
            line == from.line() || hop.version.patch == 0 || line == to.line(),
            "{} in {}",
            hop.version,
            plan.describe()
        );
    }
    // Each schema change is made once: a hop that repeats one names where it was made.
    let mut made: BTreeSet<Version> = BTreeSet::new();
    let history = catalog
        .plan(
            &catalog.releases()[0].version.to_string(),
            &from.version.to_string(),
        )
        .unwrap();
    made.insert(catalog.releases()[0].change().clone());
    for hop in &history.hops {
        made.insert(catalog.get(&hop.version).unwrap().change().clone());
    }
    for hop in &plan.hops {
        let change = catalog.get(&hop.version).unwrap().change().clone();
        assert_eq!(
            hop.already_applied_by.is_some(),
            made.contains(&change),
            "{} in {}",
            hop.version,
            plan.describe()
        );
        made.insert(change);
    }
}

#[test]
fn every_pair_of_the_seed_catalog_plans() {
    let catalog = seed_catalog();
    for from in catalog.releases() {
        for to in catalog.releases() {
            if to.version >= from.version {
                check_plan(&catalog, from, to);
            } else {
                assert!(
                    catalog
                        .plan(&from.version.to_string(), &to.version.to_string())
                        .is_err()
                );
            }
        }
    }
}

/// A valid catalog of two majors with one to three minor lines each and up to three patches per
/// line, some of which are backports of a release in a later line.
fn catalogs() -> impl Strategy<Value = ReleaseCatalog> {
    (
        proptest::collection::vec(0u64..4, 1..4),
        proptest::collection::vec(0u64..4, 1..4),
        proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    )
        .prop_map(|(first_major, second_major, backports)| {
            let mut releases = Vec::new();
            for (major, lines) in [(1u64, &first_major), (2u64, &second_major)] {
                for (minor, patches) in lines.iter().enumerate() {
                    for patch in 0..=*patches {
                        releases.push(release(&format!("{major}.{minor}.{patch}"), None));
                    }
                }
            }
            releases.sort_by(|a, b| a.version.cmp(&b.version));
            // Make some patches backports of an original (not a backport) in a later line.
            for index in backports {
                let i = index.index(releases.len());
                if releases[i].version.patch == 0 {
                    continue;
                }
                let line = releases[i].line();
                let later: Vec<Version> = releases
                    .iter()
                    .filter(|r| r.line() > line && r.backport_of.is_none())
                    .map(|r| r.version.clone())
                    .collect();
                if later.is_empty() {
                    continue;
                }
                let target = later[i % later.len()].clone();
                if releases
                    .iter()
                    .any(|r| r.backport_of.as_ref() == Some(&releases[i].version))
                {
                    continue;
                }
                releases[i].backport_of = Some(target);
            }
            ReleaseCatalog::new(releases).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_pair_of_any_two_major_catalog_plans(catalog in catalogs()) {
        for from in catalog.releases() {
            for to in catalog.releases() {
                if to.version >= from.version {
                    check_plan(&catalog, from, to);
                }
            }
        }
    }

    /// Whatever the entries, a catalog is accepted or refused with named problems: never a panic.
    #[test]
    fn any_catalog_is_accepted_or_refused(
        entries in proptest::collection::vec(
            (0u64..3, 0u64..3, 0u64..3, proptest::option::of((0u64..3, 0u64..3, 0u64..3))),
            0..10,
        )
    ) {
        let releases = entries
            .into_iter()
            .map(|(a, b, c, backport)| Release {
                version: Version::new(a, b, c),
                image: "app".into(),
                migration: Vec::new(),
                backport_of: backport.map(|(x, y, z)| Version::new(x, y, z)),
                migration_minutes: None,
            })
            .collect();
        match ReleaseCatalog::new(releases) {
            Ok(catalog) => {
                for from in catalog.releases() {
                    for to in catalog.releases() {
                        let _ = catalog.plan(&from.version.to_string(), &to.version.to_string());
                    }
                }
            }
            Err(CatalogError::Invalid(problems)) => prop_assert!(!problems.is_empty()),
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}
