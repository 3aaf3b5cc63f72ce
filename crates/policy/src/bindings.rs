//! The generated bindings of the contract, and conversions to and from the core's mirror of it.

use switchyard_core::policy as core;

wasmtime::component::bindgen!({
    path: "../../plugins/wit",
    world: "policy",
});

pub use switchyard::policy::types as wit;

impl From<core::PolicyStep> for wit::Step {
    fn from(step: core::PolicyStep) -> Self {
        match step {
            core::PolicyStep::Snapshot => wit::Step::Snapshot,
            core::PolicyStep::CreateDatabase => wit::Step::CreateDatabase,
            core::PolicyStep::SwapPointer => wit::Step::SwapPointer,
            core::PolicyStep::DeployService => wit::Step::DeployService,
            core::PolicyStep::Cleanup => wit::Step::Cleanup,
        }
    }
}

impl From<wit::Step> for core::PolicyStep {
    fn from(step: wit::Step) -> Self {
        match step {
            wit::Step::Snapshot => core::PolicyStep::Snapshot,
            wit::Step::CreateDatabase => core::PolicyStep::CreateDatabase,
            wit::Step::SwapPointer => core::PolicyStep::SwapPointer,
            wit::Step::DeployService => core::PolicyStep::DeployService,
            wit::Step::Cleanup => core::PolicyStep::Cleanup,
        }
    }
}

fn snapshot(facts: &core::SnapshotFacts) -> wit::SnapshotFacts {
    wit::SnapshotFacts {
        id: facts.id.clone(),
        source_db: facts.source_db.clone(),
        created_at: facts.created_at,
        age_seconds: facts.age_seconds,
        allocated_storage_gib: facts.allocated_storage_gib,
        engine: facts.engine.clone(),
        engine_version: facts.engine_version.clone(),
        taken_by_this_execution: facts.taken_by_this_execution,
    }
}

fn database(facts: &core::DatabaseFacts) -> wit::DatabaseFacts {
    wit::DatabaseFacts {
        id: facts.id.clone(),
        instance_class: facts.instance_class.clone(),
        allocated_storage_gib: facts.allocated_storage_gib,
        engine: facts.engine.clone(),
        engine_version: facts.engine_version.clone(),
        region: facts.region.clone(),
        active: facts.active,
        in_flight: facts.in_flight,
        final_snapshot: facts.final_snapshot,
    }
}

fn service(facts: &core::ServiceFacts) -> wit::ServiceFacts {
    wit::ServiceFacts {
        cluster: facts.cluster.clone(),
        service: facts.service.clone(),
        container: facts.container.clone(),
        current_image: facts.current_image.clone(),
        new_image: facts.new_image.clone(),
    }
}

/// The context as the plugin receives it; `settings` travels as JSON text.
pub fn context(ctx: &core::PolicyContext) -> wit::Context {
    wit::Context {
        step: ctx.step.into(),
        namespace: ctx.namespace.clone(),
        customer: ctx.customer.clone(),
        project: ctx.project.clone(),
        environment: ctx.environment.clone(),
        region: ctx.region.clone(),
        now: ctx.now,
        execution_id: ctx.execution_id.clone(),
        source_namespace: ctx.source_namespace.clone(),
        snapshot: ctx.snapshot.as_ref().map(snapshot),
        source_db: ctx.source_db.as_ref().map(database),
        target_db: ctx.target_db.as_ref().map(database),
        current_pointer: ctx.current_pointer.clone(),
        new_pointer: ctx.new_pointer.clone(),
        service: ctx.service.as_ref().map(service),
        current_version: ctx.current_version.clone(),
        target_version: ctx.target_version.clone(),
        plan: ctx.plan.clone(),
        settings: ctx.settings.to_string(),
    }
}
