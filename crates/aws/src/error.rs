//! `SdkError` to [`AwsError`]. Each call site first picks out the modeled errors that mean
//! something to it (not found, already exists, wrong state), because only it knows which resource
//! and id they are about; everything else is classified here by code and status alone.

use std::error::Error;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::{ErrorKind, ProvideErrorKind};
use switchyard_core::error::{AwsError, ResourceKind};

/// Server-side failures that the SDK's transient list leaves out, because its retry classifier
/// recognises them by their 5xx status instead; some emulators send them with a 4xx.
const SERVER_ERRORS: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "InternalException",
    "ServerException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// SSM's answer to concurrent writes of one parameter: waiting and retrying is the cure.
const CONTENTION_ERRORS: &[&str] = &["TooManyUpdates"];

/// Maps a failed call. `specific` sees modeled service errors first and returns `None` for
/// those it has no particular reading of.
pub(crate) fn map_sdk_error<E>(
    err: SdkError<E, HttpResponse>,
    specific: impl FnOnce(&E) -> Option<AwsError>,
) -> AwsError
where
    E: ProvideErrorMetadata + ProvideErrorKind + Error + 'static,
{
    let mapped = match &err {
        SdkError::ServiceError(context) => specific(context.err())
            .unwrap_or_else(|| classify(context.err(), context.raw().status().as_u16())),
        // The request never left: the input was invalid, and sending it again will not help.
        SdkError::ConstructionFailure(_) => AwsError::Rejected {
            code: "ConstructionFailure".to_owned(),
            message: DisplayErrorContext(&err).to_string(),
        },
        // What the SDK could not even start: no credentials, no region. Not transient: the
        // next try fails the same way until someone sets them.
        _ if let Some(missing) = missing_configuration(&DisplayErrorContext(&err).to_string()) => {
            missing
        }
        // Timeouts, dispatch and I/O failures, unparseable responses.
        _ => AwsError::Unavailable {
            message: DisplayErrorContext(&err).to_string(),
        },
    };
    tracing::debug!(error = %DisplayErrorContext(&err), mapped = %mapped, "aws call failed");
    mapped
}

/// The configuration errors the SDK reports as dispatch failures, named, with what to set.
fn missing_configuration(error: &str) -> Option<AwsError> {
    if error.contains("no credentials found")
        || error.contains("credential provider was not enabled")
    {
        return Some(AwsError::Rejected {
            code: "MissingCredentials".to_owned(),
            message: "no AWS credentials were found: set AWS_PROFILE (a profile in ~/.aws), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role (SSO: aws sso login)".to_owned(),
        });
    }
    if error.contains("MissingSigningRegion") || error.contains("missing signing region") {
        return Some(AwsError::Rejected {
            code: "MissingRegion".to_owned(),
            message: "no AWS region is set: give --region, or set AWS_REGION (or a region in the profile)".to_owned(),
        });
    }
    None
}

/// A service error nobody at the call site claimed.
fn classify<E>(err: &E, status: u16) -> AwsError
where
    E: ProvideErrorMetadata + ProvideErrorKind + Error,
{
    let code = code_of(err, "Unknown");
    let message = message_of(err);
    let kind = err.retryable_error_kind();
    let listed = |codes: &[&str]| codes.contains(&code.as_str());
    if listed(THROTTLING_ERRORS)
        || listed(CONTENTION_ERRORS)
        || kind == Some(ErrorKind::ThrottlingError)
        || status == 429
    {
        AwsError::Throttled { code, message }
    } else if listed(TRANSIENT_ERRORS)
        || listed(SERVER_ERRORS)
        || matches!(
            kind,
            Some(ErrorKind::TransientError | ErrorKind::ServerError)
        )
        || status >= 500
    {
        AwsError::Unavailable {
            message: format!("{code}: {message}"),
        }
    } else {
        AwsError::Rejected { code, message }
    }
}

/// The service's code, or `fallback` when the error carries none (a modeled error built without
/// metadata, as tests and some emulators produce).
pub(crate) fn code_of<E: ProvideErrorMetadata>(err: &E, fallback: &str) -> String {
    ProvideErrorMetadata::code(err)
        .unwrap_or(fallback)
        .to_owned()
}

/// The service's message, or the error's own rendering when it sent none (which for a modeled
/// error still includes the message field it was built with).
pub(crate) fn message_of<E: ProvideErrorMetadata + Error>(err: &E) -> String {
    match ProvideErrorMetadata::message(err) {
        Some(message) => message.to_owned(),
        None => err.to_string(),
    }
}

pub(crate) fn not_found(kind: ResourceKind, id: &str) -> Option<AwsError> {
    Some(AwsError::NotFound {
        kind,
        id: id.to_owned(),
    })
}

pub(crate) fn already_exists(kind: ResourceKind, id: &str) -> Option<AwsError> {
    Some(AwsError::AlreadyExists {
        kind,
        id: id.to_owned(),
    })
}

pub(crate) fn invalid_state<E: ProvideErrorMetadata + Error>(
    kind: ResourceKind,
    id: &str,
    err: &E,
) -> Option<AwsError> {
    Some(AwsError::InvalidState {
        kind,
        id: id.to_owned(),
        message: message_of(err),
    })
}

/// Keeps the code of a modeled error even when its metadata lacks one.
pub(crate) fn rejected<E: ProvideErrorMetadata + Error>(code: &str, err: &E) -> Option<AwsError> {
    Some(AwsError::Rejected {
        code: code_of(err, code),
        message: message_of(err),
    })
}

/// A success whose body lacks the resource it exists to return: as good as an unparseable
/// response, so callers treat it as such and retry.
pub(crate) fn missing_in_response(operation: &str, kind: ResourceKind, id: &str) -> AwsError {
    AwsError::Unavailable {
        message: format!("{operation} for {kind} {id} returned no {kind}"),
    }
}

#[cfg(test)]
mod configuration_tests {
    use super::*;

    #[test]
    fn missing_credentials_and_region_are_named_and_not_transient() {
        let credentials = missing_configuration(
            "dispatch failure: other: the credential provider was not enabled: no credentials found in chain",
        )
        .unwrap();
        assert!(!credentials.is_transient());
        assert!(credentials.to_string().contains("MissingCredentials"));
        assert!(credentials.to_string().contains("AWS_PROFILE"));
        let region = missing_configuration(
            "dispatch failure: other: missing signing region (MissingSigningRegion)",
        )
        .unwrap();
        assert!(region.to_string().contains("MissingRegion"));
        assert!(region.to_string().contains("AWS_REGION"));
        assert!(missing_configuration("dispatch failure: connection refused").is_none());
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ssm::operation::get_parameter::GetParameterError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::*;

    type Failed = SdkError<GetParameterError, HttpResponse>;

    fn map(err: Failed) -> AwsError {
        map_sdk_error(err, |_| None)
    }

    #[test]
    fn network_failures_are_unavailable() {
        let timeout = map(Failed::timeout_error("operation timed out after 3s"));
        assert!(
            matches!(&timeout, AwsError::Unavailable { message } if message.contains("timed out")),
            "{timeout:?}"
        );
        let io = map(Failed::dispatch_failure(ConnectorError::io(
            "connection refused by 127.0.0.1:5000".into(),
        )));
        assert!(
            matches!(&io, AwsError::Unavailable { message } if message.contains("connection refused")),
            "{io:?}"
        );
        let garbled = map(Failed::response_error(
            "invalid xml",
            HttpResponse::new(
                200.try_into().expect("valid status"),
                aws_smithy_types::body::SdkBody::from("<oops"),
            ),
        ));
        assert!(
            matches!(&garbled, AwsError::Unavailable { message } if message.contains("invalid xml")),
            "{garbled:?}"
        );
    }

    #[test]
    fn a_request_that_cannot_be_built_is_rejected() {
        let err = map(Failed::construction_failure("name must be set"));
        assert!(
            matches!(&err, AwsError::Rejected { code, message }
                if code == "ConstructionFailure" && message.contains("name must be set")),
            "{err:?}"
        );
    }

    #[test]
    fn unclaimed_service_errors_keep_code_and_message() {
        let service_error = |code: &str, status: u16| {
            let err = GetParameterError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code(code)
                    .message("said the service")
                    .build(),
            );
            let raw = HttpResponse::new(
                status.try_into().expect("valid status"),
                aws_smithy_types::body::SdkBody::empty(),
            );
            map(Failed::service_error(err, raw))
        };
        for code in [
            "Throttling",
            "RequestLimitExceeded",
            "TooManyRequestsException",
        ] {
            assert_eq!(
                service_error(code, 400),
                AwsError::Throttled {
                    code: code.into(),
                    message: "said the service".into()
                }
            );
        }
        assert_eq!(
            service_error("SlowDown", 429),
            AwsError::Throttled {
                code: "SlowDown".into(),
                message: "said the service".into()
            }
        );
        for (code, status) in [
            ("InternalFailure", 500),
            ("Whatever", 502),
            ("RequestTimeout", 400),
        ] {
            assert_eq!(
                service_error(code, status),
                AwsError::Unavailable {
                    message: format!("{code}: said the service")
                }
            );
        }
        assert_eq!(
            service_error("ValidationException", 400),
            AwsError::Rejected {
                code: "ValidationException".into(),
                message: "said the service".into()
            }
        );
    }
}
