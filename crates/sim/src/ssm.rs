use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchyard_core::error::{AwsError, ResourceKind};
use switchyard_core::ports::{Parameter, Parameters};

use crate::world::{SimAws, WorldState};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ParameterVersion {
    pub value: String,
    pub version: i64,
    pub modified: DateTime<Utc>,
}

/// Parameter Store keeps the 100 newest versions of a parameter.
const KEPT_VERSIONS: usize = 100;
/// Standard-tier parameters hold at most 4 KB.
const MAX_VALUE_BYTES: usize = 4096;

fn to_parameter(name: &str, v: &ParameterVersion) -> Parameter {
    Parameter {
        name: name.to_owned(),
        value: v.value.clone(),
        version: v.version,
        last_modified: Some(v.modified),
    }
}

impl WorldState {
    pub(crate) fn put_parameter_now(
        &mut self,
        name: &str,
        value: &str,
        overwrite: bool,
    ) -> Result<i64, AwsError> {
        if !name.starts_with('/') || name.contains("//") || name.len() > 1011 {
            return Err(AwsError::Rejected {
                code: "ValidationException".into(),
                message: format!("parameter name {name:?} is not a valid hierarchy path"),
            });
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(AwsError::Rejected {
                code: "ValidationException".into(),
                message: format!(
                    "value of {name} is {} bytes; standard parameters hold at most {MAX_VALUE_BYTES}",
                    value.len()
                ),
            });
        }
        let now = self.now;
        let versions = self.parameters.entry(name.to_owned()).or_default();
        if !versions.is_empty() && !overwrite {
            return Err(AwsError::AlreadyExists {
                kind: ResourceKind::Parameter,
                id: name.to_owned(),
            });
        }
        let version = versions.last().map_or(1, |v| v.version + 1);
        versions.push(ParameterVersion {
            value: value.to_owned(),
            version,
            modified: now,
        });
        if versions.len() > KEPT_VERSIONS {
            versions.remove(0);
        }
        Ok(version)
    }
}

#[async_trait]
impl Parameters for SimAws {
    async fn get_parameter(&self, name: &str) -> Result<Option<Parameter>, AwsError> {
        self.call("GetParameter", |s| {
            Ok(s.parameters
                .get(name)
                .and_then(|versions| versions.last())
                .map(|v| to_parameter(name, v)))
        })
    }

    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        overwrite: bool,
    ) -> Result<i64, AwsError> {
        self.call("PutParameter", |s| {
            s.put_parameter_now(name, value, overwrite)
        })
    }

    async fn delete_parameter(&self, name: &str) -> Result<bool, AwsError> {
        self.call("DeleteParameter", |s| {
            Ok(s.parameters.remove(name).is_some())
        })
    }

    async fn parameters_by_path(&self, path: &str) -> Result<Vec<Parameter>, AwsError> {
        self.call("GetParametersByPath", |s| {
            if !path.starts_with('/') {
                return Err(AwsError::Rejected {
                    code: "ValidationException".into(),
                    message: format!("path {path:?} must start with /"),
                });
            }
            let prefix = format!("{}/", path.trim_end_matches('/'));
            // Names are sorted: the path's parameters are one range, found in log time.
            Ok(s.parameters
                .range(prefix.clone()..)
                .take_while(|(name, _)| name.starts_with(&prefix))
                .filter_map(|(name, versions)| versions.last().map(|v| to_parameter(name, v)))
                .collect())
        })
    }

    async fn parameter_history(&self, name: &str) -> Result<Vec<Parameter>, AwsError> {
        self.call("GetParameterHistory", |s| {
            s.parameters
                .get(name)
                .map(|versions| versions.iter().map(|v| to_parameter(name, v)).collect())
                .ok_or_else(|| AwsError::NotFound {
                    kind: ResourceKind::Parameter,
                    id: name.to_owned(),
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::ports::Parameters;

    use crate::World;

    #[tokio::test]
    async fn versions_history_and_create_only() {
        let world = World::new(chrono::Utc::now());
        let aws = world.aws();
        assert_eq!(aws.get_parameter("/a/b").await.unwrap(), None);
        assert_eq!(aws.put_parameter("/a/b", "1", false).await.unwrap(), 1);
        let err = aws.put_parameter("/a/b", "2", false).await.unwrap_err();
        assert!(matches!(
            err,
            switchyard_core::AwsError::AlreadyExists { .. }
        ));
        assert_eq!(aws.put_parameter("/a/b", "2", true).await.unwrap(), 2);
        let got = aws.get_parameter("/a/b").await.unwrap().unwrap();
        assert_eq!((got.value.as_str(), got.version), ("2", 2));
        let history = aws.parameter_history("/a/b").await.unwrap();
        assert_eq!(
            history.iter().map(|p| p.version).collect::<Vec<_>>(),
            [1, 2]
        );
        assert!(aws.delete_parameter("/a/b").await.unwrap());
        assert!(!aws.delete_parameter("/a/b").await.unwrap());
        // A re-created parameter starts again at version 1, as in Parameter Store.
        assert_eq!(aws.put_parameter("/a/b", "3", false).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn by_path_is_a_hierarchy_not_a_string_prefix() {
        let world = World::new(chrono::Utc::now());
        let aws = world.aws();
        aws.put_parameter("/s/ns/a", "1", false).await.unwrap();
        aws.put_parameter("/s/ns/deep/b", "1", false).await.unwrap();
        aws.put_parameter("/s/nsx/c", "1", false).await.unwrap();
        let names: Vec<String> = aws
            .parameters_by_path("/s/ns")
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["/s/ns/a", "/s/ns/deep/b"]);
    }

    #[tokio::test]
    async fn keeps_a_hundred_versions_and_limits_size() {
        let world = World::new(chrono::Utc::now());
        let aws = world.aws();
        for i in 0..105 {
            aws.put_parameter("/p", &i.to_string(), true).await.unwrap();
        }
        let history = aws.parameter_history("/p").await.unwrap();
        assert_eq!(history.len(), 100);
        assert_eq!(history[0].version, 6);
        let err = aws
            .put_parameter("/p", &"x".repeat(4097), true)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("4096"));
        assert!(aws.put_parameter("no-slash", "x", true).await.is_err());
    }
}
