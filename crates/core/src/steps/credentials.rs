use super::{Env, made_by};
use crate::error::{AwsError, ResourceKind, StepError};
use crate::state::{CredentialsRef, DeployState};

/// Step 3b, polled: gives the new database its own master password before it takes traffic.
/// A restore keeps the snapshot's password, so a prod database restored from a qa snapshot would
/// open with qa's. RDS generates a new one and keeps it in a Secrets Manager secret of the
/// instance's own (`ManageMasterUserPassword`); nobody sees it, Switchyard included, and the
/// service takes it by reference. Ready once the instance is available again and its secret
/// active. Idempotent: an instance that has its secret already is not modified again.
pub async fn set_credentials(
    env: Env<'_>,
    state: &DeployState,
) -> Result<CredentialsRef, StepError> {
    let db = state.db()?;
    let settings = &state.previous()?.settings;
    let poll = state
        .credentials
        .as_ref()
        .map(|c| c.poll.clone())
        .unwrap_or_default();
    if settings.manage_master_password == Some(false) {
        return Ok(CredentialsRef {
            db_instance_id: db.db_instance_id.clone(),
            master_user_secret_arn: None,
            status: "kept".into(),
            poll: poll.ready(),
        });
    }
    let gone = || StepError::ResourceFailed {
        kind: ResourceKind::DbInstance,
        id: db.db_instance_id.clone(),
        status: "gone".into(),
    };
    let mut instance = match env.aws.describe_db(&db.db_instance_id).await {
        Ok(instance) => instance,
        Err(AwsError::NotFound { .. }) => return Err(gone()),
        Err(err) => return Err(err.into()),
    };
    if !made_by(&instance.tags, state.execution()?) {
        return Err(StepError::Internal(format!(
            "db instance {} was not restored by this execution: its credentials are not ours to change",
            instance.id
        )));
    }
    if instance.master_user_secret.is_none() && instance.status == "available" {
        instance = match env.aws.manage_master_password(&instance.id).await {
            Ok(modified) => modified,
            Err(AwsError::NotFound { .. }) => return Err(gone()),
            // Busy after all (a maintenance action): asked again at the next poll.
            Err(AwsError::InvalidState { .. }) => instance,
            Err(err) => return Err(err.into()),
        };
        tracing::info!(db = %instance.id, "master password handed to Secrets Manager");
    }
    let secret = instance.master_user_secret.clone();
    let ready =
        instance.status == "available" && secret.as_ref().is_some_and(|s| s.status == "active");
    let poll = match instance.status.as_str() {
        _ if ready => poll.ready(),
        // States an instance does not come back from by waiting.
        status @ ("failed"
        | "deleting"
        | "deleted"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "incompatible-network"
        | "incompatible-option-group"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "restore-error"
        | "storage-full"
        | "stopped"
        | "stopping") => {
            return Err(StepError::ResourceFailed {
                kind: ResourceKind::DbInstance,
                id: instance.id.clone(),
                status: status.to_owned(),
            });
        }
        // modifying, resetting-master-credentials, backing-up, upgrading, maintenance, ...:
        // RDS is at work; the poll budget bounds the wait.
        _ => poll.next(&format!("credentials of db instance {}", instance.id))?,
    };
    Ok(CredentialsRef {
        db_instance_id: instance.id.clone(),
        master_user_secret_arn: secret.map(|s| s.secret_arn),
        status: instance.status.clone(),
        poll,
    })
}
