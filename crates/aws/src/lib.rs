//! Switchyard's ports onto AWS, implemented on the AWS SDK for Rust. This is the only crate that
//! sees `SdkError`: every failure leaves here as an [`AwsError`](switchyard_core::error::AwsError)
//! with the service's code and message kept.

mod calls;
mod convert;
mod ecs;
mod error;
mod rds;
mod sfn;
mod ssm;
#[cfg(test)]
mod testing;

pub use calls::CallCounter;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use chrono::{DateTime, Utc};
use switchyard_core::ports::Clock;

/// One client per service Switchyard talks to, all built from the same [`SdkConfig`].
#[derive(Debug, Clone)]
pub struct SdkAws {
    rds: aws_sdk_rds::Client,
    ssm: aws_sdk_ssm::Client,
    ecs: aws_sdk_ecs::Client,
    sfn: aws_sdk_sfn::Client,
    /// The configuration's region, for [`Clock::region`]; empty without one.
    region: String,
    calls: CallCounter,
}

impl SdkAws {
    pub fn new(config: &SdkConfig) -> Self {
        let calls = CallCounter::default();
        Self {
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            ssm: aws_sdk_ssm::Client::from_conf(
                aws_sdk_ssm::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            ecs: aws_sdk_ecs::Client::from_conf(
                aws_sdk_ecs::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            sfn: aws_sdk_sfn::Client::from_conf(
                aws_sdk_sfn::config::Builder::from(config)
                    .interceptor(calls.clone())
                    .build(),
            ),
            region: config.region().map(ToString::to_string).unwrap_or_default(),
            calls,
        }
    }

    /// The requests these clients have sent so far, by operation (clones share the count).
    pub fn calls(&self) -> &CallCounter {
        &self.calls
    }

    /// Loads the default credential/region chain; `endpoint_url` (e.g. a moto server at
    /// `http://127.0.0.1:5000`) and `region` override it.
    pub async fn from_env(endpoint_url: Option<&str>, region: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        Self::new(&loader.load().await)
    }
}

impl Clock for SdkAws {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn region(&self) -> String {
        self.region.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_is_the_configurations() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build();
        assert_eq!(SdkAws::new(&config).region(), "eu-west-1");
        let without = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .build();
        assert_eq!(SdkAws::new(&without).region(), "");
    }
}
