//! Parameters in SSM Parameter Store.

use async_trait::async_trait;
use aws_sdk_ssm::operation::delete_parameter::DeleteParameterError;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryError;
use aws_sdk_ssm::operation::put_parameter::PutParameterError;
use aws_sdk_ssm::types::{Parameter as SdkParameter, ParameterHistory, ParameterType};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{Parameter, Parameters};

use crate::SdkAws;
use crate::convert::timestamp;
use crate::error::{already_exists, map_sdk_error, missing_in_response, not_found, rejected};

#[async_trait]
impl Parameters for SdkAws {
    async fn get_parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError> {
        let result = self
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(GetParameterError::ParameterNotFound(_))
                ) =>
            {
                return Ok(None);
            }
            Err(err) => return Err(map_sdk_error(err, |_| None)),
        };
        match output.parameter {
            Some(parameter) => Ok(Some(to_parameter(parameter))),
            None => Err(missing_in_response(
                "GetParameter",
                ResourceKind::Parameter,
                name,
            )),
        }
    }

    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        overwrite: bool,
    ) -> Result<i64, AwsError> {
        let output = self
            .ssm
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::String)
            .overwrite(overwrite)
            .send()
            .await
            .map_err(|err| {
                map_sdk_error(err, |err| match err {
                    PutParameterError::ParameterAlreadyExists(_) => {
                        already_exists(ResourceKind::Parameter, name)
                    }
                    PutParameterError::ParameterMaxVersionLimitExceeded(limit) => {
                        rejected("ParameterMaxVersionLimitExceeded", limit)
                    }
                    _ => None,
                })
            })?;
        Ok(output.version)
    }

    async fn delete_parameter(&self, name: &str) -> Result<bool, AwsError> {
        match self.ssm.delete_parameter().name(name).send().await {
            Ok(_) => Ok(true),
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(DeleteParameterError::ParameterNotFound(_))
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(map_sdk_error(err, |_| None)),
        }
    }

    async fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, AwsError> {
        let mut pages = self
            .ssm
            .get_parameters_by_path()
            .path(path)
            .recursive(true)
            .with_decryption(true)
            .into_paginator()
            .send();
        let mut parameters = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|err| map_sdk_error(err, |_| None))?
        {
            parameters.extend(
                page.parameters
                    .unwrap_or_default()
                    .into_iter()
                    .map(to_parameter),
            );
        }
        Ok(parameters)
    }

    async fn parameter_history(&self, name: &str) -> Result<Vec<Parameter>, AwsError> {
        let mut pages = self
            .ssm
            .get_parameter_history()
            .name(name)
            .with_decryption(true)
            .into_paginator()
            .send();
        let mut history = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(|err| {
            map_sdk_error(err, |err| match err {
                GetParameterHistoryError::ParameterNotFound(_) => {
                    not_found(ResourceKind::Parameter, name)
                }
                _ => None,
            })
        })? {
            history.extend(
                page.parameters
                    .unwrap_or_default()
                    .into_iter()
                    .map(|entry| from_history(entry, name)),
            );
        }
        // Parameter Store answers oldest first today, but the API does not promise it.
        history.sort_by_key(|parameter| parameter.version);
        Ok(history)
    }
}

fn to_parameter(parameter: SdkParameter) -> Parameter {
    Parameter {
        name: parameter.name.unwrap_or_default(),
        value: parameter.value.unwrap_or_default(),
        version: parameter.version,
        last_modified: parameter.last_modified_date.as_ref().and_then(timestamp),
    }
}

fn from_history(entry: ParameterHistory, name: &str) -> Parameter {
    Parameter {
        name: entry.name.unwrap_or_else(|| name.to_owned()),
        value: entry.value.unwrap_or_default(),
        version: entry.version,
        last_modified: entry.last_modified_date.as_ref().and_then(timestamp),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::Client;
    use aws_sdk_ssm::operation::delete_parameter::DeleteParameterOutput;
    use aws_sdk_ssm::operation::get_parameter::GetParameterOutput;
    use aws_sdk_ssm::operation::get_parameter_history::GetParameterHistoryOutput;
    use aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput;
    use aws_sdk_ssm::operation::put_parameter::PutParameterOutput;
    use aws_sdk_ssm::types::error::{
        ParameterAlreadyExists, ParameterMaxVersionLimitExceeded, ParameterNotFound,
    };
    use aws_smithy_mocks::mock;

    use super::*;
    use crate::testing::{self, json_error, meta};

    fn sdk_parameter(name: &str, value: &str, version: i64) -> SdkParameter {
        SdkParameter::builder()
            .name(name)
            .value(value)
            .version(version)
            .last_modified_date(aws_smithy_types::DateTime::from_secs(1_764_108_000))
            .build()
    }

    fn history(value: &str, version: i64) -> ParameterHistory {
        ParameterHistory::builder()
            .name("/switchyard/xy/active")
            .value(value)
            .version(version)
            .build()
    }

    #[tokio::test]
    async fn get_parameter_decrypts_and_maps() {
        let rule = mock!(Client::get_parameter)
            .match_requests(|req| {
                req.name() == Some("/switchyard/xy/active") && req.with_decryption() == Some(true)
            })
            .then_output(|| {
                GetParameterOutput::builder()
                    .parameter(sdk_parameter("/switchyard/xy/active", "db-blue", 3))
                    .build()
            });
        let parameter = testing::ssm(&[&rule])
            .get_parameter("/switchyard/xy/active")
            .await
            .unwrap();
        assert_eq!(
            parameter,
            Some(Parameter {
                name: "/switchyard/xy/active".into(),
                value: "db-blue".into(),
                version: 3,
                last_modified: chrono::DateTime::from_timestamp(1_764_108_000, 0),
            })
        );
    }

    #[tokio::test]
    async fn get_parameter_not_found_is_none() {
        let rule = mock!(Client::get_parameter).then_error(|| {
            GetParameterError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        let parameter = testing::ssm(&[&rule]).get_parameter("/nope").await.unwrap();
        assert_eq!(parameter, None);
    }

    #[tokio::test]
    async fn put_parameter_returns_the_version() {
        let rule = mock!(Client::put_parameter)
            .match_requests(|req| {
                req.name() == Some("/switchyard/xy/lock")
                    && req.value() == Some("exec-1")
                    && req.r#type() == Some(&ParameterType::String)
                    && req.overwrite() == Some(false)
            })
            .then_output(|| PutParameterOutput::builder().version(1).build());
        let version = testing::ssm(&[&rule])
            .put_parameter("/switchyard/xy/lock", "exec-1", false)
            .await
            .unwrap();
        assert_eq!(version, 1);
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn put_parameter_maps_exists_and_version_limit() {
        let exists = mock!(Client::put_parameter).then_error(|| {
            PutParameterError::ParameterAlreadyExists(ParameterAlreadyExists::builder().build())
        });
        assert_eq!(
            testing::ssm(&[&exists])
                .put_parameter("/switchyard/xy/lock", "exec-2", false)
                .await
                .unwrap_err(),
            AwsError::AlreadyExists {
                kind: ResourceKind::Parameter,
                id: "/switchyard/xy/lock".into()
            }
        );
        let limit = mock!(Client::put_parameter).then_error(|| {
            PutParameterError::ParameterMaxVersionLimitExceeded(
                ParameterMaxVersionLimitExceeded::builder()
                    .message("100 versions")
                    .meta(meta("ParameterMaxVersionLimitExceeded", "100 versions"))
                    .build(),
            )
        });
        assert_eq!(
            testing::ssm(&[&limit])
                .put_parameter("/switchyard/xy/active", "db-green", true)
                .await
                .unwrap_err(),
            AwsError::Rejected {
                code: "ParameterMaxVersionLimitExceeded".into(),
                message: "100 versions".into()
            }
        );
        // Without metadata the code still names the limit.
        let bare = mock!(Client::put_parameter).then_error(|| {
            PutParameterError::ParameterMaxVersionLimitExceeded(
                ParameterMaxVersionLimitExceeded::builder().build(),
            )
        });
        let err = testing::ssm(&[&bare])
            .put_parameter("/switchyard/xy/active", "db-green", true)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AwsError::Rejected { code, .. } if code == "ParameterMaxVersionLimitExceeded"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn delete_parameter_reports_whether_there_was_one() {
        let deleted = mock!(Client::delete_parameter)
            .match_requests(|req| req.name() == Some("/here"))
            .then_output(|| DeleteParameterOutput::builder().build());
        let missing = mock!(Client::delete_parameter)
            .match_requests(|req| req.name() == Some("/gone"))
            .then_error(|| {
                DeleteParameterError::ParameterNotFound(ParameterNotFound::builder().build())
            });
        let aws = testing::ssm(&[&deleted, &missing]);
        assert!(aws.delete_parameter("/here").await.unwrap());
        assert!(!aws.delete_parameter("/gone").await.unwrap());
    }

    #[tokio::test]
    async fn parameters_by_path_merges_every_page() {
        let first = mock!(Client::get_parameters_by_path)
            .match_requests(|req| {
                req.path() == Some("/switchyard/xy/")
                    && req.recursive() == Some(true)
                    && req.next_token().is_none()
            })
            .then_output(|| {
                GetParametersByPathOutput::builder()
                    .parameters(sdk_parameter("/switchyard/xy/active", "db-blue", 2))
                    .next_token("t-2")
                    .build()
            });
        let second = mock!(Client::get_parameters_by_path)
            .match_requests(|req| req.next_token() == Some("t-2"))
            .then_output(|| {
                GetParametersByPathOutput::builder()
                    .parameters(sdk_parameter("/switchyard/xy/dbs/db-blue", "{}", 1))
                    .parameters(sdk_parameter("/switchyard/xy/dbs/db-green", "{}", 1))
                    .build()
            });
        let parameters = testing::ssm(&[&first, &second])
            .parameters_by_path("/switchyard/xy/")
            .await
            .unwrap();
        let names: Vec<_> = parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "/switchyard/xy/active",
                "/switchyard/xy/dbs/db-blue",
                "/switchyard/xy/dbs/db-green"
            ]
        );
    }

    #[tokio::test]
    async fn parameter_history_is_oldest_first_across_pages() {
        let first = mock!(Client::get_parameter_history)
            .match_requests(|req| req.next_token().is_none())
            .then_output(|| {
                GetParameterHistoryOutput::builder()
                    .parameters(history("db-green", 3))
                    .parameters(history("db-blue", 1))
                    .next_token("t-2")
                    .build()
            });
        let second = mock!(Client::get_parameter_history)
            .match_requests(|req| req.next_token() == Some("t-2"))
            .then_output(|| {
                GetParameterHistoryOutput::builder()
                    .parameters(history("db-blue", 2))
                    .build()
            });
        let versions = testing::ssm(&[&first, &second])
            .parameter_history("/switchyard/xy/active")
            .await
            .unwrap();
        let seen: Vec<_> = versions
            .iter()
            .map(|p| (p.version, p.value.as_str()))
            .collect();
        assert_eq!(seen, [(1, "db-blue"), (2, "db-blue"), (3, "db-green")]);
        assert_eq!(versions[0].last_modified, None);
    }

    #[tokio::test]
    async fn parameter_history_of_nothing_is_not_found() {
        let rule = mock!(Client::get_parameter_history).then_error(|| {
            GetParameterHistoryError::ParameterNotFound(ParameterNotFound::builder().build())
        });
        assert_eq!(
            testing::ssm(&[&rule])
                .parameter_history("/nope")
                .await
                .unwrap_err(),
            AwsError::NotFound {
                kind: ResourceKind::Parameter,
                id: "/nope".into()
            }
        );
    }

    #[tokio::test]
    async fn throttling_and_contention_are_throttled() {
        let throttled = mock!(Client::get_parameter)
            .then_http_response(|| json_error(400, "ThrottlingException", "Rate exceeded"));
        assert_eq!(
            testing::ssm(&[&throttled])
                .get_parameter("/switchyard/xy/active")
                .await
                .unwrap_err(),
            AwsError::Throttled {
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into()
            }
        );
        let contended = mock!(Client::put_parameter)
            .then_http_response(|| json_error(400, "TooManyUpdates", "concurrent update"));
        assert_eq!(
            testing::ssm(&[&contended])
                .put_parameter("/switchyard/xy/active", "db-green", true)
                .await
                .unwrap_err(),
            AwsError::Throttled {
                code: "TooManyUpdates".into(),
                message: "concurrent update".into()
            }
        );
    }

    #[tokio::test]
    async fn internal_server_error_is_unavailable() {
        let rule = mock!(Client::delete_parameter)
            .then_http_response(|| json_error(500, "InternalServerError", "oops"));
        let err = testing::ssm(&[&rule])
            .delete_parameter("/switchyard/xy/lock")
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AwsError::Unavailable {
                message: "InternalServerError: oops".into()
            }
        );
    }
}
