//! How many requests Switchyard sent to AWS, by operation: what a command cost in calls, which is
//! what rate limits and fleets are measured in (`switchyard status` on an endpoint prints it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts each request as it is sent (a retried call counts each attempt, as AWS does), keyed
/// `Service.Operation`. Clones share one count.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    /// Requests sent so far, by operation.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        // A poisoned count is still a count: a panic elsewhere does not make it wrong.
        match self.0.lock() {
            Ok(counts) => counts.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Requests sent so far, all operations.
    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    fn add(&self, operation: String) {
        let mut counts = match self.0.lock() {
            Ok(counts) => counts,
            Err(poisoned) => poisoned.into_inner(),
        };
        *counts.entry(operation).or_default() += 1;
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "SwitchyardCallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or_else(
            || "unknown".to_owned(),
            |metadata| format!("{}.{}", metadata.service(), metadata.name()),
        );
        self.add(operation);
        Ok(())
    }
}
