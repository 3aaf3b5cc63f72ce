//! What the policies said, for people: an engine that passes every evaluation through to the
//! real one and keeps a line per decision, which the progress printer shows under the step that
//! asked. The state document is left alone: decisions are the engine's business, not the
//! deploy's.

use std::sync::{Arc, Mutex};

use switchyard_core::policy::{
    Evaluation, PluginFailure, PolicyContext, PolicyEngine, PolicyStep, Verdict,
};

/// Decision lines not printed yet, in the order the plugins answered.
#[derive(Debug, Default)]
pub struct PolicyNotes {
    lines: Mutex<Vec<String>>,
}

impl PolicyNotes {
    fn push(&self, new: Vec<String>) {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(new);
    }

    /// The lines kept since the last call.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One or more lines for one plugin's answer; none when the plugin does not check the step.
pub fn decision_lines(
    plugin: &str,
    step: PolicyStep,
    result: &Result<Option<Evaluation>, PluginFailure>,
) -> Vec<String> {
    match result {
        Ok(None) => Vec::new(),
        Ok(Some(evaluation)) => {
            let who = format!("policy {plugin} {} [{step}]", evaluation.version);
            let mut lines = vec![match &evaluation.decision.verdict {
                Verdict::Allow => {
                    format!("{who}: allow ({} µs)", evaluation.elapsed.as_micros())
                }
                Verdict::Deny(reasons) if reasons.is_empty() => {
                    format!("{who}: deny (no reason given)")
                }
                Verdict::Deny(reasons) => format!("{who}: deny: {}", reasons.join("; ")),
            }];
            lines.extend(
                evaluation
                    .decision
                    .warnings
                    .iter()
                    .map(|warning| format!("{who}: warning: {warning}")),
            );
            lines
        }
        Err(failure) => vec![format!("policy {plugin} [{step}]: failed: {failure}")],
    }
}

/// A [`PolicyEngine`] that keeps a line per decision of the engine it wraps.
pub struct ObservedEngine {
    inner: Arc<dyn PolicyEngine>,
    notes: Arc<PolicyNotes>,
}

impl ObservedEngine {
    pub fn new(inner: Arc<dyn PolicyEngine>, notes: Arc<PolicyNotes>) -> Self {
        ObservedEngine { inner, notes }
    }
}

#[async_trait::async_trait]
impl PolicyEngine for ObservedEngine {
    async fn evaluate(
        &self,
        plugin: &str,
        context: &PolicyContext,
    ) -> Result<Option<Evaluation>, PluginFailure> {
        let result = self.inner.evaluate(plugin, context).await;
        self.notes
            .push(decision_lines(plugin, context.step, &result));
        result
    }

    async fn declares_setting(&self, plugin: &str, property: &str) -> bool {
        self.inner.declares_setting(plugin, property).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_core::policy::{Decision, NoPlugins};

    use super::*;

    fn evaluation(verdict: Verdict, warnings: &[&str]) -> Evaluation {
        Evaluation {
            plugin: "snapshot-freshness".into(),
            version: "0.1.0".into(),
            digest: String::new(),
            decision: Decision {
                verdict,
                warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
            },
            elapsed: Duration::from_micros(23),
        }
    }

    #[test]
    fn lines_say_who_said_what() {
        assert_eq!(
            decision_lines(
                "snapshot-freshness",
                PolicyStep::CreateDatabase,
                &Ok(Some(evaluation(Verdict::Allow, &["close to the limit"])))
            ),
            [
                "policy snapshot-freshness 0.1.0 [create-database]: allow (23 µs)",
                "policy snapshot-freshness 0.1.0 [create-database]: warning: close to the limit"
            ]
        );
        assert_eq!(
            decision_lines(
                "snapshot-freshness",
                PolicyStep::CreateDatabase,
                &Ok(Some(evaluation(
                    Verdict::Deny(vec!["80h old".into(), "over 24h".into()]),
                    &[]
                )))
            ),
            ["policy snapshot-freshness 0.1.0 [create-database]: deny: 80h old; over 24h"]
        );
        assert!(decision_lines("x", PolicyStep::Snapshot, &Ok(None)).is_empty());
    }

    #[tokio::test]
    async fn the_observed_engine_answers_as_the_inner_one_and_keeps_lines() {
        let notes = Arc::new(PolicyNotes::default());
        let engine = ObservedEngine::new(Arc::new(NoPlugins), notes.clone());
        let result = engine.evaluate("naming", &PolicyContext::default()).await;
        assert!(matches!(result, Err(PluginFailure::Missing { .. })));
        assert_eq!(
            notes.take(),
            [
                "policy naming [create-database]: failed: plugin naming is not installed: no policy engine is configured"
            ]
        );
        assert!(notes.take().is_empty());
    }
}
