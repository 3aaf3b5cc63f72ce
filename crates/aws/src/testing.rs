//! Clients whose every call is answered by `aws-smithy-mocks` rules, never by the network.

use aws_smithy_mocks::Rule;

use crate::SdkAws;

/// Builds a service client around a mock interceptor. `mock_client!` would do this, but it needs
/// the SDK crates' `test-util` feature and keeps the standard retries, which would answer a
/// throttling rule with backoff sleeps instead of handing it to the mapping.
macro_rules! mock_service {
    ($sdk:ident, $rules:expr) => {{
        let mut interceptor = aws_smithy_mocks::MockResponseInterceptor::new()
            .rule_mode(aws_smithy_mocks::RuleMode::MatchAny);
        for rule in $rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            // A throttling answer must reach the mapping, not be retried away.
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .build();
        $sdk::Client::from_conf(config)
    }};
}

pub(crate) fn rds(rules: &[&Rule]) -> SdkAws {
    SdkAws {
        rds: mock_service!(aws_sdk_rds, rules.iter().copied()),
        ssm: mock_service!(aws_sdk_ssm, std::iter::empty::<&Rule>()),
        ecs: mock_service!(aws_sdk_ecs, std::iter::empty::<&Rule>()),
        sfn: mock_service!(aws_sdk_sfn, std::iter::empty::<&Rule>()),
        region: "us-east-1".into(),
        calls: crate::CallCounter::default(),
    }
}

pub(crate) fn ssm(rules: &[&Rule]) -> SdkAws {
    SdkAws {
        rds: mock_service!(aws_sdk_rds, std::iter::empty::<&Rule>()),
        ssm: mock_service!(aws_sdk_ssm, rules.iter().copied()),
        ecs: mock_service!(aws_sdk_ecs, std::iter::empty::<&Rule>()),
        sfn: mock_service!(aws_sdk_sfn, std::iter::empty::<&Rule>()),
        region: "us-east-1".into(),
        calls: crate::CallCounter::default(),
    }
}

pub(crate) fn ecs(rules: &[&Rule]) -> SdkAws {
    SdkAws {
        rds: mock_service!(aws_sdk_rds, std::iter::empty::<&Rule>()),
        ssm: mock_service!(aws_sdk_ssm, std::iter::empty::<&Rule>()),
        ecs: mock_service!(aws_sdk_ecs, rules.iter().copied()),
        sfn: mock_service!(aws_sdk_sfn, std::iter::empty::<&Rule>()),
        region: "us-east-1".into(),
        calls: crate::CallCounter::default(),
    }
}

/// Metadata as the SDK's parser attaches it to every modeled error it reads off the wire.
pub(crate) fn meta(code: &str, message: &str) -> aws_smithy_types::error::ErrorMetadata {
    aws_smithy_types::error::ErrorMetadata::builder()
        .code(code)
        .message(message)
        .build()
}

/// A raw error response in a JSON protocol (SSM, ECS), as the service would send it.
pub(crate) fn json_error(
    status: u16,
    code: &str,
    message: &str,
) -> aws_smithy_runtime_api::http::Response {
    http_response(
        status,
        format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
    )
}

/// A raw error response in RDS's query protocol.
pub(crate) fn query_error(
    status: u16,
    code: &str,
    message: &str,
) -> aws_smithy_runtime_api::http::Response {
    http_response(
        status,
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>\
             <Message>{message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        ),
    )
}

fn http_response(status: u16, body: String) -> aws_smithy_runtime_api::http::Response {
    let status = aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("valid status");
    aws_smithy_runtime_api::http::Response::new(status, aws_smithy_types::body::SdkBody::from(body))
}
