use super::{Env, made_by};
use crate::error::{AwsError, ResourceKind, StepError};
use crate::ports::FinishRestoreRequest;
use crate::state::{CredentialsRef, DeployState};

/// Step 3b, polled: finishes the new database before it takes traffic. A restore keeps the
/// snapshot's password, so a prod database restored from a qa snapshot would open with qa's.
/// RDS generates a new one and keeps it in a Secrets Manager secret of the instance's own
/// (`ManageMasterUserPassword`); nobody sees it, Switchyard included, and the service takes it
/// by reference. In the same ModifyDBInstance it gets what of the replaced database's setup a
/// restore cannot take (maintenance window, Enhanced Monitoring, Performance Insights). Ready
/// once the instance is available again and its secret active. Idempotent: what the instance
/// has already is not asked for again.
pub async fn set_credentials(
    env: Env<'_>,
    state: &DeployState,
) -> Result<CredentialsRef, StepError> {
    let db = state.db()?;
    let settings = &state.previous()?.settings;
    let previous = state.credentials.as_ref();
    let poll = previous.map(|c| c.poll.clone()).unwrap_or_default();
    let mut setup_asked = previous.is_some_and(|c| c.setup_asked);
    let manage_password = settings.manage_master_password != Some(false);
    if !manage_password && (db.setup.is_empty() || setup_asked) {
        return Ok(CredentialsRef {
            db_instance_id: db.db_instance_id.clone(),
            master_user_secret_arn: None,
            status: "kept".into(),
            setup_asked,
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
    let setup = if setup_asked {
        Default::default()
    } else {
        db.setup.after_restore_missing_from(&instance.config)
    };
    let hand_over = manage_password && instance.master_user_secret.is_none();
    if (hand_over || !setup.is_empty()) && instance.status == "available" {
        let request = FinishRestoreRequest {
            db_instance_id: instance.id.clone(),
            manage_master_password: hand_over,
            setup: setup.clone(),
        };
        instance = match env.aws.finish_restore(&request).await {
            Ok(modified) => {
                setup_asked = true;
                if hand_over {
                    tracing::info!(db = %modified.id, "master password handed to Secrets Manager");
                }
                if !setup.is_empty() {
                    tracing::info!(db = %modified.id, setup = ?setup, "setup a restore cannot take asked for");
                }
                modified
            }
            Err(AwsError::NotFound { .. }) => return Err(gone()),
            // Busy after all (a maintenance action): asked again at the next poll.
            Err(AwsError::InvalidState { .. }) => instance,
            Err(err) => return Err(err.into()),
        };
    } else if setup.is_empty() {
        setup_asked = true;
    }
    let secret = instance.master_user_secret.clone();
    let ready = instance.status == "available"
        && setup_asked
        && (!manage_password || secret.as_ref().is_some_and(|s| s.status == "active"));
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
        master_user_secret_arn: secret.filter(|_| manage_password).map(|s| s.secret_arn),
        // The password stays the snapshot's, however long the setup takes: said as such.
        status: if manage_password {
            instance.status.clone()
        } else {
            "kept".into()
        },
        setup_asked,
        poll,
    })
}
