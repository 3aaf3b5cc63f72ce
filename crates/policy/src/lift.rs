//! Reading what a plugin returns without trusting its size. Nothing a plugin hands the host is
//! copied past [`Limits::max_transfer_bytes`]: wasmtime charges every list element and string
//! byte it lifts against the store's hostcall fuel, which the host sets to that bound, so a
//! million empty reasons or a thousand reasons aliasing one large string are refused while
//! being lifted, before the host allocates for them. What fits is then held to the contract's
//! own limits: the number of entries, their bytes (each entry counting [`ENTRY_OVERHEAD`]
//! besides its text), and one printable line each.

use switchyard_core::policy::{Decision, PluginDescriptor, Verdict};

use crate::bindings::wit;
use crate::host::{ENTRY_OVERHEAD, Limits, MAX_DESCRIBED_STEPS, MAX_SCHEMA_BYTES};
use crate::text;

/// The message of wasmtime's error when a lift runs out of hostcall fuel (its type is private).
const TRANSFER_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// Whether `err` is a transfer over [`Limits::max_transfer_bytes`].
pub fn is_transfer_limit(err: &wasmtime::Error) -> bool {
    err.chain()
        .any(|cause| cause.to_string().contains(TRANSFER_EXHAUSTED))
}

/// Why a decision was refused.
pub enum Bad {
    /// Over a size limit.
    TooLarge(String),
    /// Not what the contract allows (blank, or not printable on one line).
    Invalid(String),
}

pub fn decision(raw: wit::Decision, limits: &Limits) -> Result<Decision, Bad> {
    let (verdict, reasons) = match raw.verdict {
        wit::Verdict::Allow => (None, Vec::new()),
        wit::Verdict::Deny(reasons) => (Some(()), reasons),
    };
    let entries = reasons.len() + raw.warnings.len();
    if entries > limits.max_output_entries {
        return Err(Bad::TooLarge(format!(
            "decision of {entries} reasons and warnings, over the limit of {}",
            limits.max_output_entries
        )));
    }
    let bytes: usize = reasons
        .iter()
        .chain(&raw.warnings)
        .map(|entry| entry.len() + ENTRY_OVERHEAD)
        .sum();
    if bytes > limits.max_output_bytes {
        return Err(Bad::TooLarge(format!(
            "decision of {bytes} bytes, over the limit of {} bytes (each entry counts {ENTRY_OVERHEAD} bytes besides its text)",
            limits.max_output_bytes
        )));
    }
    for (what, list) in [("reason", &reasons), ("warning", &raw.warnings)] {
        for (index, entry) in list.iter().enumerate() {
            text::check_entry(entry, limits.max_entry_bytes)
                .map_err(|why| Bad::Invalid(format!("{what} {index} {why}")))?;
        }
    }
    Ok(Decision {
        verdict: match verdict {
            None => Verdict::Allow,
            Some(()) => Verdict::Deny(reasons),
        },
        warnings: raw.warnings,
    })
}

pub fn descriptor(raw: wit::Descriptor) -> Result<PluginDescriptor, String> {
    if raw.name.len() > 64 {
        return Err(format!(
            "name of {} bytes, over the limit of 64",
            raw.name.len()
        ));
    }
    text::check_entry(&raw.version, 64).map_err(|why| format!("version {why}"))?;
    if raw.settings_schema.len() > MAX_SCHEMA_BYTES {
        return Err(format!(
            "settings schema of {} bytes, over the limit of {MAX_SCHEMA_BYTES}",
            raw.settings_schema.len()
        ));
    }
    if raw.steps.len() > MAX_DESCRIBED_STEPS {
        return Err(format!(
            "{} steps, over the limit of {MAX_DESCRIBED_STEPS}",
            raw.steps.len()
        ));
    }
    let mut steps = Vec::new();
    for step in raw.steps.into_iter().map(Into::into) {
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    Ok(PluginDescriptor {
        name: raw.name,
        version: raw.version,
        steps,
        settings_schema: raw.settings_schema,
    })
}
