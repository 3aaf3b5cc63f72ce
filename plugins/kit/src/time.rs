//! Calendar arithmetic on `context.now` (proleptic Gregorian, UTC or a fixed offset). A plugin
//! has no clock of its own and no time zone database: these are pure functions of their input.

use std::fmt;

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// `mon`, `tue`, ... `sun`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    /// Reads `mon` or `monday` (any case).
    pub fn parse(text: &str) -> Option<Weekday> {
        let lower = text.trim().to_ascii_lowercase();
        Weekday::ALL.into_iter().find(|day| {
            let short = day.as_str();
            lower == short
                || (lower.starts_with(short)
                    && matches!(
                        (short, &lower[3..]),
                        ("mon", "day")
                            | ("tue", "sday")
                            | ("wed", "nesday")
                            | ("thu", "rsday")
                            | ("fri", "day")
                            | ("sat", "urday")
                            | ("sun", "day")
                    ))
        })
    }

    /// Monday is 0.
    pub fn index(&self) -> usize {
        *self as usize
    }

    pub fn previous(&self) -> Weekday {
        Weekday::ALL[(self.index() + 6) % 7]
    }

    pub fn next(&self) -> Weekday {
        Weekday::ALL[(self.index() + 1) % 7]
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wall-clock date and time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub year: i64,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    /// 0-23.
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub weekday: Weekday,
}

const SECS_PER_DAY: i64 = 86_400;

impl DateTime {
    /// The UTC date and time of `secs` since the Unix epoch.
    pub fn from_unix(secs: i64) -> DateTime {
        let days = secs.div_euclid(SECS_PER_DAY);
        let rem = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = Weekday::ALL[(days + 3).rem_euclid(7) as usize];
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            weekday,
        }
    }

    /// The wall-clock date and time at `offset_minutes` east of UTC (`60` for UTC+01:00).
    pub fn from_unix_with_offset(secs: i64, offset_minutes: i32) -> DateTime {
        DateTime::from_unix(secs.saturating_add(i64::from(offset_minutes) * 60))
    }

    /// Minutes since midnight, 0-1439.
    pub fn minute_of_day(&self) -> u32 {
        self.hour * 60 + self.minute
    }

    /// Seconds since the Unix epoch, reading this date and time as UTC.
    pub fn to_unix(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

impl fmt::Display for DateTime {
    /// `2026-11-25 22:25:26`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Reads an RFC 3339 time (`2026-12-20T00:00:00Z`, `2026-12-20T01:00:00+01:00`, fractions of a
/// second ignored) into seconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = text.get(from..to)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !valid_date(i64::from(year), month, day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let r = rest.as_bytes();
            if r.len() != 6 || r[3] != b':' {
                return None;
            }
            let hh: i64 = rest.get(1..3)?.parse().ok()?;
            let mm: i64 = rest.get(4..6)?.parse().ok()?;
            if hh > 23 || mm > 59 {
                return None;
            }
            sign * (hh * 3600 + mm * 60)
        }
    };
    let local = DateTime {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second: second.min(59),
        weekday: Weekday::Mon,
    };
    Some(local.to_unix() - offset_secs)
}

/// Whether `year-month-day` is a real calendar date.
pub fn valid_date(year: i64, month: u32, day: u32) -> bool {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

// Howard Hinnant's algorithms (http://howardhinnant.github.io/date_algorithms.html).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_to_calendar() {
        let epoch = DateTime::from_unix(0);
        assert_eq!(epoch.to_string(), "1970-01-01 00:00:00");
        assert_eq!(epoch.weekday, Weekday::Thu);
        // 2026-11-28T03:30:00Z, a Saturday.
        let at = DateTime::from_unix(1_795_836_600);
        assert_eq!(at.to_string(), "2026-11-28 03:30:00");
        assert_eq!(at.weekday, Weekday::Sat);
        assert_eq!(at.minute_of_day(), 210);
        assert_eq!(at.to_unix(), 1_795_836_600);
        let before = DateTime::from_unix(-1);
        assert_eq!(before.to_string(), "1969-12-31 23:59:59");
        assert_eq!(before.weekday, Weekday::Wed);
        let leap = DateTime::from_unix(951_782_400);
        assert_eq!(leap.to_string(), "2000-02-29 00:00:00");
        let local = DateTime::from_unix_with_offset(1_795_836_600, -240);
        assert_eq!(local.to_string(), "2026-11-27 23:30:00");
        assert_eq!(local.weekday, Weekday::Fri);
    }

    #[test]
    fn round_trip_every_day_for_years() {
        let mut secs = -(400 * 366 * SECS_PER_DAY);
        while secs < 400 * 366 * SECS_PER_DAY {
            let at = DateTime::from_unix(secs);
            assert!(valid_date(at.year, at.month, at.day));
            assert_eq!(at.to_unix(), secs);
            secs += SECS_PER_DAY + 3_607;
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-28T03:30:00Z"), Some(1_795_836_600));
        assert_eq!(
            parse_rfc3339("2026-11-28T04:30:00.250+01:00"),
            Some(1_795_836_600)
        );
        assert_eq!(
            parse_rfc3339("2026-11-27T23:30:00-04:00"),
            Some(1_795_836_600)
        );
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T03:30:00",
            "2026-13-28T03:30:00Z",
            "2026-02-29T03:30:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T03:30:00+0100",
            "2026-11-28T03:30:00.Z",
            "２026-11-28T03:30:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn weekdays() {
        assert_eq!(Weekday::parse("sat"), Some(Weekday::Sat));
        assert_eq!(Weekday::parse("Saturday"), Some(Weekday::Sat));
        assert_eq!(Weekday::parse("WED"), Some(Weekday::Wed));
        assert_eq!(Weekday::parse("satur"), None);
        assert_eq!(Weekday::parse("sa"), None);
        assert_eq!(Weekday::Mon.previous(), Weekday::Sun);
        assert_eq!(Weekday::Sun.next(), Weekday::Mon);
    }
}
