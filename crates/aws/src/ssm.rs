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
            Err(err) if matches!(err.as_service_error(), Some(GetParameterError::ParameterNotFound(_))) => {
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
            parameters.extend(page.parameters.unwrap_or_default().into_iter().map(to_parameter));
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
