//! Execution names, as Step Functions allows them, and whether a namespace has seen one before.
//! Steps recognise their own earlier work by the execution's id and start time; a name reused
//! locally (Step Functions refuses a duplicate for 90 days, the local runner would not) is
//! refused before it runs, so that no two runs ever share an id within a namespace's history.

use crate::error::StepError;
use crate::names::Namespace;
use crate::ports::{Aws, tag};
use crate::records::{ParameterLayout, Records};

/// The longest name Step Functions gives a Standard workflow execution.
pub const MAX_EXECUTION_NAME: usize = 80;

/// 1–80 characters, ASCII letters, digits, `-` and `_`: what Step Functions accepts (it also
/// allows some other printable characters, which CloudWatch metrics then cannot carry; they
/// are refused here).
pub fn check_execution_name(name: &str) -> Result<(), StepError> {
    if name.is_empty() || name.len() > MAX_EXECUTION_NAME {
        return Err(StepError::invalid(format!(
            "execution name {name:?} must be 1 to {MAX_EXECUTION_NAME} characters long"
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(StepError::invalid(format!(
            "execution name {name:?} has {bad:?}: use ASCII letters, digits, '-' and '_'"
        )));
    }
    Ok(())
}

/// The execution's name: the last part of its id (an ARN, or a bare name).
pub fn name_of(execution_id: &str) -> &str {
    execution_id.rsplit(':').next().unwrap_or(execution_id)
}

/// Where `name` was used before in `ns`, if it was: the pointer's history (every version Parameter
/// Store keeps), the lock, the tracking records, and the tags of the namespace's databases and
/// snapshots.
pub async fn name_used_in(
    aws: &dyn Aws,
    layout: &ParameterLayout,
    ns: &Namespace,
    name: &str,
) -> Result<Option<String>, StepError> {
    let records = Records {
        params: aws,
        layout,
    };
    let same = |id: &str| name_of(id) == name;
    let history = match records.pointer_history(ns).await {
        Ok(history) => history,
        Err(StepError::InvalidInput(_)) => Vec::new(),
        Err(err) => return Err(err),
    };
    for (pointer, version) in history {
        if pointer.execution_id.as_deref().is_some_and(same) {
            return Ok(Some(format!("pointer version {version} of {ns}")));
        }
    }
    // Every deploy that held the lock, a settings-only one (which moves no pointer) included.
    let deploys = match aws.parameter_history(&layout.last_deploy(ns)).await {
        Ok(deploys) => deploys,
        Err(crate::error::AwsError::NotFound { .. }) => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    for record in deploys {
        if let Ok(last) = serde_json::from_str::<crate::records::LastDeploy>(&record.value)
            && same(&last.execution_id)
        {
            return Ok(Some(format!("the deploy record of {ns}")));
        }
    }
    if let Some(lock) = records.lock(ns).await?
        && same(&lock.execution_id)
    {
        return Ok(Some(format!("the lock of {ns}")));
    }
    for tracked in records.tracked(ns).await? {
        if same(&tracked.execution_id) {
            return Ok(Some(format!(
                "the record of {} in {ns}",
                tracked.db_instance_id
            )));
        }
    }
    let ours = |tags: &crate::ports::Tags| {
        tags.get(tag::NAMESPACE).map(String::as_str) == Some(ns.as_str())
            && tags.get(tag::EXECUTION).is_some_and(|id| same(id))
    };
    for db in aws.list_dbs().await.map_err(StepError::from)? {
        if ours(&db.tags) {
            return Ok(Some(format!("database {}", db.id)));
        }
    }
    let snapshots = aws.list_snapshots().await.map_err(StepError::from)?;
    Ok(snapshots
        .iter()
        .find(|s| ours(&s.tags))
        .map(|snapshot| format!("snapshot {}", snapshot.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_step_functions_accepts() {
        for good in ["foo", "pipeline-1a2b_3", &"x".repeat(80)] {
            assert!(check_execution_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            &"x".repeat(81),
            "a/b",
            "with space",
            "star*",
            "ü",
            "a:b",
            "tab\t",
        ] {
            let err = check_execution_name(bad).unwrap_err();
            assert_eq!(err.name(), "InvalidInput", "{bad}");
        }
    }

    #[test]
    fn the_name_is_the_last_part_of_the_id() {
        assert_eq!(
            name_of("arn:aws:states:eu-west-1:1:execution:deploy:foo"),
            "foo"
        );
        assert_eq!(name_of("foo"), "foo");
    }
}
