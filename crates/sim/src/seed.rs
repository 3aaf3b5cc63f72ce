//! The demo world `switchyard init --demo` creates: a few tenant stacks, each with an active
//! database, its pointer and settings in Parameter Store, and an ECS service running on it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use switchyard_core::error::{AwsError, StepError};
use switchyard_core::names::{self, Namespace, Timestamp};
use switchyard_core::ports::{ContainerDefinition, Tags, TaskDefinition, tag};
use switchyard_core::records::{ActivePointer, NamespaceSettings, ParameterLayout, PolicyCatalog};
use switchyard_core::steps::service::env_var;
use switchyard_core::tenants;

use crate::rds::SimInstance;
use crate::world::World;
use switchyard_releases::{CatalogError, ReleaseCatalog};

#[derive(Debug, Clone)]
pub struct DemoTenant {
    pub namespace: &'static str,
    pub app_version: &'static str,
    pub storage_gib: i32,
    /// How long ago its current data was snapshotted.
    pub data_age_days: i64,
}

/// The example application's releases (`examples/tenant-app/releases.json`): two release lines,
/// 1.3 and 1.4, the main line on to 2.0, and a fix made in 2.0.1 backported to 1.3.3 and 1.4.1.
pub const DEMO_RELEASES: &str = include_str!("../../../examples/tenant-app/releases.json");

pub fn demo_release_catalog() -> Result<ReleaseCatalog, CatalogError> {
    ReleaseCatalog::from_json(DEMO_RELEASES)
}

/// Two customers; `xy-0146` has the full dev -> qa -> prod chain.
pub fn demo_tenants() -> Vec<DemoTenant> {
    vec![
        DemoTenant {
            namespace: "xy-0146-dev",
            app_version: "1.4.0",
            storage_gib: 20,
            data_age_days: 1,
        },
        DemoTenant {
            namespace: "xy-0146-qa",
            app_version: "1.3.2",
            storage_gib: 20,
            data_age_days: 9,
        },
        DemoTenant {
            namespace: "xy-0146-prod",
            app_version: "1.3.2",
            storage_gib: 100,
            data_age_days: 30,
        },
        DemoTenant {
            namespace: "ab-0201-dev",
            app_version: "2.0.1",
            storage_gib: 20,
            data_age_days: 2,
        },
        DemoTenant {
            namespace: "ab-0201-prod",
            app_version: "2.0.0",
            storage_gib: 50,
            data_age_days: 14,
        },
    ]
}

impl DemoTenant {
    pub fn namespace(&self) -> Namespace {
        // The table above is made of valid names; a typo there is caught by the seed's tests.
        self.namespace
            .parse()
            .unwrap_or_else(|_| unreachable_namespace())
    }

    pub fn cluster(&self) -> &'static str {
        if self.namespace.ends_with("-prod") {
            "switchyard-prod"
        } else {
            "switchyard-nonprod"
        }
    }

    pub fn service(&self) -> String {
        format!("{}-app", self.namespace)
    }

    /// The database the tenant's pointer names now.
    pub fn db_instance_id(&self, world: &World) -> String {
        world.active_db(&self.namespace()).unwrap_or_default()
    }
}

fn unreachable_namespace() -> Namespace {
    // Only reachable if the demo table is edited wrongly; fall back to a valid name so the
    // seed's tests show the mismatch instead of a crash.
    "invalid-0000-demo"
        .parse()
        .unwrap_or_else(|_| unreachable_namespace())
}

impl DemoTenant {
    /// The settings its onboarding records.
    pub fn settings(&self) -> NamespaceSettings {
        NamespaceSettings {
            db_instance_class: "db.t4g.medium".into(),
            db_subnet_group: Some(format!("{}-db", self.cluster())),
            vpc_security_group_ids: vec!["sg-0de30db5".into()],
            cluster: self.cluster().into(),
            service: self.service(),
            container: "app".into(),
            final_snapshot: None,
            region: None,
            plan: Some("standard".into()),
            version: Some(self.app_version.into()),
            policies: BTreeMap::new(),
            allowed_sources: Vec::new(),
            expected_deploy_minutes: None,
            app_environment: BTreeMap::new(),
            app_secrets: BTreeMap::new(),
            manage_master_password: None,
            pinned_version: None,
            database: Default::default(),
        }
    }
}

impl World {
    /// A world with the demo tenants, onboarded as a platform team onboards the tenants it runs
    /// already: each stack (its database and its service on it) exists first, then
    /// `tenant import` adopts it ([`tenants::import`], the same code the command runs).
    pub fn demo(now: DateTime<Utc>) -> World {
        let world = World::new(now);
        let layout = ParameterLayout::default();
        for tenant in demo_tenants() {
            if let Err(err) = world.onboard(&tenant) {
                // Caught by the seed's tests, which check every demo tenant is registered.
                tracing::error!(namespace = %tenant.namespace, "demo tenant not imported: {err}");
            }
        }
        match demo_release_catalog() {
            Ok(catalog) => {
                if let Err(err) = world.seed_release_catalog(&layout, &catalog) {
                    tracing::error!("demo release catalog not written: {err}");
                }
            }
            Err(err) => tracing::error!("demo release catalog: {err}"),
        }
        world
    }

    /// A tenant's stack made ([`World::seed_stack`]) and adopted with `tenant import`'s library
    /// call ([`tenants::import`]): how the demo world, and bigger fleets in tests, come to be.
    pub fn onboard(&self, tenant: &DemoTenant) -> Result<String, StepError> {
        let db_id = self.seed_stack(tenant);
        let aws = self.aws();
        // The simulated calls complete at once: nothing here waits on a runtime.
        futures_executor::block_on(tenants::import(
            &aws,
            &ParameterLayout::default(),
            &tenant.namespace(),
            &tenant.settings(),
            &db_id,
        ))?;
        Ok(db_id)
    }

    /// A tenant's stack as the platform's own infrastructure code made it, before Switchyard
    /// knows it: a database (data as old as the tenant's `data_age_days`) and a service whose
    /// task definition names it. Returns the database's identifier.
    pub fn seed_stack(&self, tenant: &DemoTenant) -> String {
        let ns = tenant.namespace();
        let mut state = self.lock();
        let now = state.now;
        let taken = now - Duration::days(tenant.data_age_days);
        let timestamp = Timestamp::from_datetime(taken);
        let db_id = names::db_instance_id(&ns, timestamp).unwrap_or_default();
        // A production tier as a platform team sets one up: a standby in another zone, its
        // own parameter group, deletion protection, a week of backups, its maintenance window,
        // Enhanced Monitoring, Performance Insights, the owner's tags. A restore carries none of
        // it over unless asked.
        let mut config = crate::rds::default_config("postgres", "16.4");
        let mut tags = Tags::new();
        if let Some(group) = tenant.settings().db_subnet_group {
            state.subnet_groups.insert(group);
        }
        if ns.is_production() {
            let group = format!("{ns}-postgres16");
            state.parameter_groups.insert(group.clone());
            config.parameter_group = Some(group);
            config.multi_az = Some(true);
            config.deletion_protection = Some(true);
            config.backup_retention_days = Some(7);
            config.copy_tags_to_snapshot = Some(true);
            // What a restore cannot take at all: set on the new instance afterwards.
            config.maintenance_window = Some("tue:02:00-tue:02:30".into());
            config.monitoring_interval_seconds = Some(60);
            config.monitoring_role_arn = Some(format!(
                "arn:aws:iam::{}:role/rds-monitoring-role",
                state.account
            ));
            config.performance_insights = Some(true);
            config.performance_insights_retention_days = Some(7);
            tags.insert("cost-center".into(), ns.customer().to_owned());
        }
        let instance = SimInstance {
            config,
            id: db_id.clone(),
            instance_class: "db.t4g.medium".into(),
            engine: "postgres".into(),
            engine_version: "16.4".into(),
            allocated_storage_gib: tenant.storage_gib,
            tags,
            created_at: taken,
            backing_up_at: taken,
            available_at: taken,
            deletion: None,
            modified_at: None,
            master_user_secret_arn: None,
            migrations: Vec::new(),
        };
        let endpoint = instance.endpoint(&state.region);
        state.insert_instance(instance);

        let environment = BTreeMap::from([
            (env_var::DB_HOST.to_owned(), endpoint),
            (env_var::DB_PORT.to_owned(), "5432".to_owned()),
            (env_var::DB_INSTANCE_ID.to_owned(), db_id.clone()),
            (env_var::DB_TIMESTAMP.to_owned(), timestamp.to_string()),
        ]);
        let definition = TaskDefinition {
            arn: None,
            family: tenant.service(),
            revision: 0,
            containers: vec![ContainerDefinition {
                name: "app".into(),
                image: format!(
                    "000000000000.dkr.ecr.eu-west-1.amazonaws.com/{}-app:{}",
                    ns.customer(),
                    tenant.app_version
                ),
                essential: true,
                memory_mib: Some(512),
                environment,
                secrets: BTreeMap::new(),
                command: Vec::new(),
            }],
            cpu: Some("256".into()),
            memory: Some("512".into()),
            network_mode: Some("awsvpc".into()),
            requires_compatibilities: vec!["FARGATE".into()],
            execution_role_arn: None,
            task_role_arn: None,
            tags: Tags::from([(tag::NAMESPACE.to_owned(), ns.to_string())]),
        };
        if let Ok(registered) = state.register_now(&definition) {
            let arn = registered.arn.unwrap_or_default();
            state.create_service_now(tenant.cluster(), &tenant.service(), &arn, 2);
        }
        db_id
    }

    /// Deletes a service, as the platform does when it takes a tenant's stack down (ECS
    /// forgets it; here at once).
    pub fn delete_service(&self, cluster: &str, name: &str) -> bool {
        self.lock().delete_service_now(cluster, name)
    }

    /// Writes the policy catalog (`{root}/policies`), as the platform team would. The demo world
    /// has none: with no policy engine every bound plugin is missing, and the step fails closed.
    pub fn seed_policy_catalog(
        &self,
        layout: &ParameterLayout,
        catalog: &PolicyCatalog,
    ) -> Result<i64, AwsError> {
        catalog.validate().map_err(|why| AwsError::Rejected {
            code: "ValidationException".into(),
            message: format!("invalid policy catalog: {why}"),
        })?;
        let value = serde_json::to_string(catalog).map_err(|err| AwsError::Rejected {
            code: "ValidationException".into(),
            message: format!("policy catalog: {err}"),
        })?;
        self.lock()
            .put_parameter_now(&layout.policies(), &value, true)
    }

    /// Binds the bundled policies (`plugins/policies`) to every demo namespace, with settings
    /// the demo tenants meet: the deploy from the README passes all seven, an upgrade that
    /// skips a release or a production change outside its window is denied.
    pub fn seed_demo_policies(&self, layout: &ParameterLayout) -> Result<i64, AwsError> {
        let catalog: PolicyCatalog =
            serde_json::from_value(demo_policy_catalog()).map_err(|err| AwsError::Rejected {
                code: "ValidationException".into(),
                message: format!("demo policy catalog: {err}"),
            })?;
        self.seed_policy_catalog(layout, &catalog)
    }

    /// Writes the release catalog (`{root}/releases`), as `switchyard release add` would.
    pub fn seed_release_catalog(
        &self,
        layout: &ParameterLayout,
        catalog: &ReleaseCatalog,
    ) -> Result<i64, AwsError> {
        self.lock()
            .put_parameter_now(&layout.releases(), &catalog.to_json(), true)
    }

    /// The database a namespace's pointer names, read straight from the world.
    pub fn active_db(&self, ns: &Namespace) -> Option<String> {
        let layout = ParameterLayout::default();
        let state = self.lock();
        let value = &state.parameters.get(&layout.active_db(ns))?.last()?.value;
        serde_json::from_str::<ActivePointer>(value)
            .ok()
            .map(|p| p.db_instance_id)
    }

    /// Every instance in the world, with its status: for tests and the status view.
    pub fn db_instances(&self) -> Vec<(String, String)> {
        let mut state = self.lock();
        state.settle();
        let now = state.now;
        state
            .instances
            .values()
            .map(|i| (i.id.clone(), i.status(now).to_owned()))
            .collect()
    }
}

/// The platform team's rules for the demo customers, as they would write `{root}/policies`.
pub fn demo_policy_catalog() -> serde_json::Value {
    serde_json::json!({"bindings": [
        {"plugin": "naming"},
        {"plugin": "snapshot-freshness"},
        {"plugin": "data-residency", "settings": {"allowed_regions": ["eu-west-1", "eu-central-1"]}},
        {"plugin": "change-window", "settings": {
            "environments": ["prod"],
            "windows": [{"days": ["sat", "sun"], "start": "02:00", "end": "06:00", "utc_offset_minutes": 0}],
            "freezes": [{"from": "2026-12-21T00:00:00Z", "to": "2027-01-04T00:00:00Z", "reason": "year-end freeze"}]
        }},
        {"plugin": "capacity", "settings": {
            "plans": {
                "standard": {"instance_classes": ["db.t4g.small", "db.t4g.medium"], "max_storage_gib": 200},
                "enterprise": {"instance_classes": ["db.r6g.large", "db.r6g.xlarge"], "max_storage_gib": 2000}
            },
            "default_plan": "standard"
        }},
        {"plugin": "protect-active"},
        {"plugin": "upgrade-path"}
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_world_is_consistent() {
        let world = World::demo(Utc::now());
        let instances = world.db_instances();
        assert_eq!(instances.len(), demo_tenants().len());
        for tenant in demo_tenants() {
            assert_eq!(tenant.namespace().as_str(), tenant.namespace);
            let db = tenant.db_instance_id(&world);
            assert!(db.starts_with(tenant.namespace), "{db}");
            assert!(instances.contains(&(db.clone(), "available".to_owned())));
            // Imported: registered, and the database tagged for its namespace.
            let layout = ParameterLayout::default();
            let state = world.lock();
            assert!(
                state
                    .parameters
                    .contains_key(&layout.settings(&tenant.namespace()))
            );
            assert_eq!(
                state.instances[&db]
                    .tags
                    .get(tag::NAMESPACE)
                    .map(String::as_str),
                Some(tenant.namespace)
            );
        }
    }

    #[test]
    fn a_seeded_catalog_reads_back_and_the_demo_has_none() {
        let world = World::demo(Utc::now());
        let layout = ParameterLayout::default();
        assert!(!world.lock().parameters.contains_key(&layout.policies()));
        let catalog: PolicyCatalog = serde_json::from_value(serde_json::json!({
            "bindings": [{"plugin": "naming", "namespaces": ["xy-*"]}]
        }))
        .unwrap();
        assert_eq!(world.seed_policy_catalog(&layout, &catalog).unwrap(), 1);
        let value = world.lock().parameters[&layout.policies()][0].value.clone();
        assert_eq!(
            serde_json::from_str::<PolicyCatalog>(&value).unwrap(),
            catalog
        );
        let bad: PolicyCatalog =
            serde_json::from_value(serde_json::json!({"bindings": [{"plugin": ""}]})).unwrap();
        assert!(world.seed_policy_catalog(&layout, &bad).is_err());
    }

    #[test]
    fn world_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/world.json");
        let world = World::demo(Utc::now());
        world.save(&path).unwrap();
        let loaded = World::load(&path).unwrap();
        assert_eq!(loaded.snapshot_state(), world.snapshot_state());
        std::fs::write(&path, "{").unwrap();
        let err = World::load(&path).err().unwrap();
        assert!(
            err.to_string().contains("is not a switchyard world"),
            "{err}"
        );
    }
}
