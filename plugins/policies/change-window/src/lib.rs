//! # change-window
//!
//! Checks every step, in the environments named by `environments` (default `["prod"]`; `"*"`
//! for all): a change runs only inside one of the customer's change windows and outside every
//! freeze. The only clock is `context.now`.
//!
//! - **Windows** (`windows`, required where the policy applies): `{"days": ["sat", "sun"],
//!   "start": "02:00", "end": "06:00", "utc_offset_minutes": 60}`. `days` are the days (`mon` or
//!   `monday`, any case) a window *starts* on, at `start`, local time at the fixed offset (no
//!   daylight saving: give a summer and a winter window if need be). A window whose `end` is not
//!   after its `start` crosses midnight and ends the next day (`"22:00"`–`"04:00"`); `"24:00"`
//!   ends at midnight. The start minute is inside, the end minute is not. Denied when `now` is in
//!   no window; an empty list allows nothing.
//! - **Freezes** (`freezes`, default none): `{"from": "2026-12-20T00:00:00Z", "to":
//!   "2027-01-05T00:00:00Z", "reason": "year-end"}`, RFC 3339; `from` inclusive, `to` exclusive.
//!   Denied inside any freeze, even inside a window.
//! - **Exempt steps** (`exempt_steps`, default `["cleanup"]`): never checked. Clean-up runs at the
//!   end of a deploy that was admitted, possibly after its window closed; denying it would roll
//!   back a good deploy over the deletion of a database nobody uses.
//!
//! A deploy's later steps are checked when they run: a window must be long enough for a whole
//! deploy, or its swap may be denied (and the deploy rolled back) after the window closes.
//!
//! Settings (all but `windows` optional):
//! `{"environments": ["prod"], "windows": [...], "freezes": [...], "exempt_steps": ["cleanup"]}`.

use serde::Deserialize;
use switchyard_policy_kit::prelude::*;

pub struct ChangeWindow;

impl Policy for ChangeWindow {
    const NAME: &'static str = "change-window";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const STEPS: &'static [Step] = Step::ALL;
    const SETTINGS_SCHEMA: &'static str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "change-window settings",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "environments": {
      "description": "The environments the policy applies to; \"*\" for all.",
      "type": "array", "items": {"type": "string"}, "default": ["prod"]
    },
    "windows": {
      "description": "When changes may run. Required in the environments the policy applies to.",
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["days", "start", "end"],
        "properties": {
          "days": {
            "description": "The days the window starts on, local time.",
            "type": "array", "minItems": 1,
            "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]}
          },
          "start": {"description": "HH:MM, local time.", "type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
          "end": {"description": "HH:MM or 24:00, local time; not after start: the next day.", "type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"},
          "utc_offset_minutes": {"description": "Local time's offset east of UTC.", "type": "integer", "minimum": -720, "maximum": 840, "default": 0}
        }
      }
    },
    "freezes": {
      "description": "When no change may run, whatever the windows.",
      "type": "array",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["from", "to"],
        "properties": {
          "from": {"description": "Inclusive.", "type": "string", "format": "date-time"},
          "to": {"description": "Exclusive.", "type": "string", "format": "date-time"},
          "reason": {"type": "string"}
        }
      },
      "default": []
    },
    "exempt_steps": {
      "description": "Steps never checked.",
      "type": "array",
      "items": {"enum": ["snapshot", "create-database", "swap-pointer", "deploy-service", "cleanup"]},
      "default": ["cleanup"]
    }
  }
}"#;

    fn evaluate(ctx: &Context) -> Decision {
        let settings = match ctx.settings::<Settings>() {
            Ok(settings) => settings,
            Err(reason) => return Decision::deny(reason),
        };
        match settings.rules(ctx) {
            Ok(None) => Decision::allow(),
            Ok(Some(rules)) => check(ctx.now, &ctx.namespace, &rules),
            Err(reason) => Decision::deny(reason),
        }
    }
}

export_policy!(ChangeWindow);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_environments")]
    environments: Vec<String>,
    #[serde(default)]
    windows: Option<Vec<WindowSetting>>,
    #[serde(default)]
    freezes: Vec<FreezeSetting>,
    #[serde(default = "default_exempt")]
    exempt_steps: Vec<String>,
}

fn default_environments() -> Vec<String> {
    vec!["prod".to_owned()]
}

fn default_exempt() -> Vec<String> {
    vec!["cleanup".to_owned()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowSetting {
    days: Vec<String>,
    start: String,
    end: String,
    #[serde(default)]
    utc_offset_minutes: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeSetting {
    from: String,
    to: String,
    #[serde(default)]
    reason: String,
}

/// A change window, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: Vec<Weekday>,
    /// Minutes after local midnight, 0..1440.
    pub start: u32,
    /// Minutes after local midnight, 1..=1440; not after `start`: the next day.
    pub end: u32,
    pub utc_offset_minutes: i32,
}

/// A freeze, checked: `[from, to)` in seconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub from: i64,
    pub to: i64,
    pub reason: String,
}

/// What applies to a context: its windows and freezes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
}

fn hhmm(text: &str, allow_24: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if allow_24 => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

impl Settings {
    /// `None` when the policy does not apply to `ctx`; else the checked rules.
    fn rules(self, ctx: &Context) -> Result<Option<Rules>, String> {
        for (i, step) in self.exempt_steps.iter().enumerate() {
            if Step::from_name(step).is_none() {
                return Err(format!(
                    "invalid setting `exempt_steps[{i}]`: {step:?} is not a step (snapshot, create-database, swap-pointer, deploy-service, cleanup)"
                ));
            }
        }
        let applies = self
            .environments
            .iter()
            .any(|env| env == "*" || *env == ctx.environment);
        if !applies || self.exempt_steps.iter().any(|s| s == ctx.step.as_str()) {
            return Ok(None);
        }
        let Some(window_settings) = self.windows else {
            return Err(format!(
                "setting `windows` is required: the change windows of environment {}",
                ctx.environment
            ));
        };
        let mut windows = Vec::new();
        for (i, w) in window_settings.into_iter().enumerate() {
            let bad =
                |field: &str, why: String| format!("invalid setting `windows[{i}].{field}`: {why}");
            if w.days.is_empty() {
                return Err(bad("days", "no days given".to_owned()));
            }
            let mut days = Vec::new();
            for (j, day) in w.days.iter().enumerate() {
                match Weekday::parse(day) {
                    Some(day) => days.push(day),
                    None => {
                        return Err(bad(
                            &format!("days[{j}]"),
                            format!("{day:?} is not a day of the week"),
                        ));
                    }
                }
            }
            let start = hhmm(&w.start, false)
                .ok_or_else(|| bad("start", format!("{:?} is not a time HH:MM", w.start)))?;
            let end = hhmm(&w.end, true)
                .ok_or_else(|| bad("end", format!("{:?} is not a time HH:MM (or 24:00)", w.end)))?;
            if start == end {
                return Err(bad(
                    "end",
                    "the window is empty: end equals start (00:00-24:00 is a whole day)".to_owned(),
                ));
            }
            if !(-720..=840).contains(&w.utc_offset_minutes) {
                return Err(bad(
                    "utc_offset_minutes",
                    format!("{} is not between -720 and 840", w.utc_offset_minutes),
                ));
            }
            windows.push(Window {
                days,
                start,
                end,
                utc_offset_minutes: w.utc_offset_minutes,
            });
        }
        let mut freezes = Vec::new();
        for (i, f) in self.freezes.into_iter().enumerate() {
            let time = |field: &str, text: &str| {
                parse_rfc3339(text).ok_or_else(|| {
                    format!("invalid setting `freezes[{i}].{field}`: {text:?} is not an RFC 3339 time such as 2026-12-20T00:00:00Z")
                })
            };
            let (from, to) = (time("from", &f.from)?, time("to", &f.to)?);
            if to <= from {
                return Err(format!(
                    "invalid setting `freezes[{i}].to`: {:?} is not after from",
                    f.to
                ));
            }
            freezes.push(Freeze {
                from,
                to,
                reason: f.reason,
            });
        }
        Ok(Some(Rules { windows, freezes }))
    }
}

impl Window {
    /// Whether `now` (seconds since the epoch) is inside the window.
    pub fn contains(&self, now: i64) -> bool {
        let local = DateTime::from_unix_with_offset(now, self.utc_offset_minutes);
        let minute = local.minute_of_day();
        let starts_on = |day: Weekday| self.days.contains(&day);
        if self.start < self.end {
            starts_on(local.weekday) && (self.start..self.end).contains(&minute)
        } else {
            (starts_on(local.weekday) && minute >= self.start)
                || (starts_on(local.weekday.previous()) && minute < self.end)
        }
    }
}

fn offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    format!(
        "UTC{sign}{:02}:{:02}",
        minutes.unsigned_abs() / 60,
        minutes.unsigned_abs() % 60
    )
}

fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let days: Vec<&str> = self.days.iter().map(Weekday::as_str).collect();
        write!(
            f,
            "{} {}-{} {}",
            days.join(","),
            clock(self.start),
            clock(self.end),
            offset(self.utc_offset_minutes)
        )
    }
}

/// The decision at `now` for `namespace` under `rules`.
pub fn check(now: i64, namespace: &str, rules: &Rules) -> Decision {
    let mut checks = Checks::new();
    let at = DateTime::from_unix(now);
    for freeze in rules
        .freezes
        .iter()
        .filter(|f| (f.from..f.to).contains(&now))
    {
        let reason = if freeze.reason.is_empty() {
            "a"
        } else {
            freeze.reason.as_str()
        };
        checks.deny(format!(
            "{namespace} is in {reason} freeze from {} UTC to {} UTC (now {at} UTC)",
            DateTime::from_unix(freeze.from),
            DateTime::from_unix(freeze.to)
        ));
    }
    if !rules.windows.iter().any(|w| w.contains(now)) {
        let windows: Vec<String> = rules.windows.iter().map(Window::to_string).collect();
        checks.deny(format!(
            "now ({} {at} UTC) is outside every change window of {namespace}: {}",
            at.weekday,
            if windows.is_empty() {
                "none is set".to_owned()
            } else {
                windows.join("; ")
            }
        ));
    }
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-28T03:30:00Z, a Saturday.
    const NOW: i64 = 1_795_836_600;

    fn window(days: &[Weekday], start: &str, end: &str, offset: i32) -> Window {
        Window {
            days: days.to_vec(),
            start: hhmm(start, false).unwrap(),
            end: hhmm(end, true).unwrap(),
            utc_offset_minutes: offset,
        }
    }

    #[test]
    fn windows() {
        use Weekday::*;
        assert!(window(&[Sat], "03:30", "04:00", 0).contains(NOW));
        assert!(!window(&[Sat], "03:00", "03:30", 0).contains(NOW));
        assert!(!window(&[Sat], "02:00", "04:00", 60).contains(NOW));
        assert!(window(&[Sat], "04:00", "05:00", 60).contains(NOW));
        // Friday 22:00 to Saturday 04:00.
        assert!(window(&[Fri], "22:00", "04:00", 0).contains(NOW));
        assert!(!window(&[Sat], "22:00", "04:00", 0).contains(NOW));
        // UTC-04:00: Friday 23:30 local.
        assert!(window(&[Fri], "23:00", "24:00", -240).contains(NOW));
        assert!(window(&[Mon, Tue, Wed, Thu, Fri, Sat, Sun], "00:00", "24:00", 0).contains(NOW));
        assert_eq!(
            window(&[Sat, Sun], "02:00", "06:00", 60).to_string(),
            "sat,sun 02:00-06:00 UTC+01:00"
        );
        assert_eq!(offset(-570), "UTC-09:30");
    }

    #[test]
    fn times() {
        assert_eq!(hhmm("00:00", false), Some(0));
        assert_eq!(hhmm("23:59", false), Some(1439));
        assert_eq!(hhmm("24:00", true), Some(1440));
        for bad in ["24:00", "2:00", "02:60", "25:00", "0200", "-1:00", "+1:00"] {
            assert_eq!(hhmm(bad, false), None, "{bad}");
        }
    }

    #[test]
    fn fixtures() {
        switchyard_policy_kit::testing::check_fixtures::<ChangeWindow>(include_str!(
            "../fixtures.json"
        ));
    }
}
