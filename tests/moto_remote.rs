//! `switchyard deploy --remote` against moto's Step Functions: the command starts an execution on
//! a deployed state machine with the deploy's input, follows the execution history that moto's
//! interpreter writes until the execution ends, and reports it as a local run would.
//!
//! moto cannot run Switchyard's Lambda functions, so the machines here are stand-ins of Pass and
//! Fail states named like the deploy's: what is tested is the wire (StartExecution, the history's
//! events, their details) and what the command makes of it, not the deploy's steps.
//!
//! Needs the moto server that `tests/run` starts (`SWITCHYARD_TEST_MOTO_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code)]
mod common;

use std::process::Command;

use common::{moto_config, moto_post, moto_url, random_letters};
use serde_json::{Value, json};

async fn create_machine(name: &str, definition: Value) -> String {
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    client
        .create_state_machine()
        .name(name)
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/switchyard-deploy")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

fn switchyard(args: &[&str]) -> (i32, Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--endpoint-url", &moto_url(), "--region", "us-east-1"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (output.status.code().unwrap_or(-1), report, stderr)
}

fn executions_enabled() {
    // Global and idempotent: moto runs executions (instead of a canned history) only with this.
    moto_post(
        &moto_url(),
        "/moto-api/config",
        r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
    );
}

#[tokio::test]
async fn a_remote_deploy_starts_the_machine_and_follows_it_to_its_end() {
    executions_enabled();
    let customer = format!("mt{}", random_letters(4));
    let namespace = format!("{customer}-0001-qa");
    let source = format!("{customer}-0001-dev");
    // Echoes the request back as the deploy document, with the new database the steps would add.
    let machine = format!("DeployStateMachine-{}", random_letters(8));
    create_machine(
        &machine,
        json!({
            "StartAt": "AcquireLock",
            "States": {
                "AcquireLock": {"Type": "Pass", "Result": {"execution_id": "x", "acquired_at": "2026-11-26T00:00:00Z"}, "ResultPath": "$.lock", "Next": "CreateDb"},
                "CreateDb": {"Type": "Pass", "Result": {"db_instance_id": "new-db", "status": "available", "endpoint": null, "port": null, "ready": true}, "ResultPath": "$.db", "End": true}
            }
        }),
    )
    .await;
    let name = format!("remote-{}", random_letters(8));
    let (code, report, stderr) = switchyard(&[
        "deploy",
        &namespace,
        "--from",
        &source,
        "--remote",
        "--state-machine",
        &machine,
        "--name",
        &name,
        "--poll-seconds",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["status"], "SUCCEEDED", "{report}");
    assert_eq!(report["execution_name"], name.as_str());
    assert!(
        report["execution_arn"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{machine}:{name}")),
        "{report}"
    );
    // The input reached the execution and its output was read from the history's last event.
    assert_eq!(report["namespace"], namespace.as_str());
    assert_eq!(report["new_db"], "new-db");
    assert_eq!(report["state_transitions"], 2);

    // The execution moto ran got the deploy's input, as CodePipeline would send it.
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    let described = client
        .describe_execution()
        .execution_arn(report["execution_arn"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"namespace": namespace, "source_namespace": source})
    );
}

#[tokio::test]
async fn a_remote_failure_is_reported_with_its_error_name() {
    executions_enabled();
    let customer = format!("mt{}", random_letters(4));
    let machine = format!("DeployStateMachine-{}", random_letters(8));
    let arn = create_machine(
        &machine,
        json!({
            "StartAt": "AcquireLock",
            "States": {
                "AcquireLock": {"Type": "Pass", "Next": "DeployFailed"},
                "DeployFailed": {"Type": "Fail", "Error": "NamespaceLocked", "Cause": "held by another execution"}
            }
        }),
    )
    .await;
    let (code, report, stderr) = switchyard(&[
        "deploy",
        &format!("{customer}-0001-qa"),
        "--snapshot",
        "snap-1",
        "--remote",
        "--state-machine",
        &arn,
        "--poll-seconds",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(code, 1, "{report} {stderr}");
    assert_eq!(report["status"], "FAILED", "{report}");
    assert_eq!(report["error"], "NamespaceLocked");
    assert_eq!(report["cause"], "held by another execution");
}

#[tokio::test]
async fn a_missing_machine_is_named() {
    let name = format!("NoSuchMachine-{}", random_letters(8));
    let (code, _, stderr) = switchyard(&[
        "deploy",
        "xy-0146-qa",
        "--snapshot",
        "snap-1",
        "--remote",
        "--state-machine",
        &name,
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!("no state machine \"{name}\"")),
        "{stderr}"
    );
}

/// Puts a namespace's lock in moto's Parameter Store as the holder `execution_arn` would.
async fn lock(namespace: &str, execution_arn: &str) {
    let ssm = aws_sdk_ssm::Client::new(&moto_config().await);
    ssm.put_parameter()
        .name(format!("/switchyard/namespaces/{namespace}/lock"))
        .value(
            json!({"execution_id": execution_arn, "acquired_at": "2026-11-26T00:00:00Z"})
                .to_string(),
        )
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
}

async fn start(machine_arn: &str) -> String {
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    client
        .start_execution()
        .state_machine_arn(machine_arn)
        .input("{}")
        .send()
        .await
        .unwrap()
        .execution_arn
}

#[tokio::test]
async fn unlock_refuses_while_the_holder_still_runs() {
    executions_enabled();
    let namespace = format!("mt{}-0001-qa", random_letters(4));
    let machine = create_machine(
        &format!("Slow-{}", random_letters(8)),
        json!({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": true}}}),
    )
    .await;
    let running = start(&machine).await;
    lock(&namespace, &running).await;
    let (code, _, stderr) = switchyard(&["unlock", &namespace, "--execution", &running]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is RUNNING"), "{stderr}");
    let (code, _, stderr) = switchyard(&["unlock", &namespace, "--execution", &running, "--force"]);
    assert_eq!(code, 0, "{stderr}");
    // Released: nothing is held, so there is nothing to refuse.
    let (code, _, stderr) = switchyard(&["unlock", &namespace, "--execution", &running]);
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test]
async fn unlock_releases_the_lock_of_an_execution_that_ended() {
    executions_enabled();
    let namespace = format!("mt{}-0001-qa", random_letters(4));
    let machine = create_machine(
        &format!("Quick-{}", random_letters(8)),
        json!({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let ended = start(&machine).await;
    let client = aws_sdk_sfn::Client::new(&moto_config().await);
    for _ in 0..50 {
        let status = client
            .describe_execution()
            .execution_arn(&ended)
            .send()
            .await
            .unwrap()
            .status;
        if status.as_str() != "RUNNING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    lock(&namespace, &ended).await;
    let (code, _, stderr) = switchyard(&["unlock", &namespace, "--execution", &ended]);
    assert_eq!(code, 0, "{stderr}");
    let ssm = aws_sdk_ssm::Client::new(&moto_config().await);
    let gone = ssm
        .get_parameter()
        .name(format!("/switchyard/namespaces/{namespace}/lock"))
        .send()
        .await;
    assert!(gone.is_err(), "the lock is still there");
}
