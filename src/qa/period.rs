//! Times for the quality reports: `from`/`to` as epoch milliseconds, a date (`2026-12-07`,
//! midnight UTC) or an RFC 3339 date-time (`2026-12-07T08:30:00Z`, `+08:00`), and UTC days and
//! date-times back as text. Hand-written: the project has no date crate, and these few lines
//! (Howard Hinnant's days-from-civil) are all the reports need.

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month, day) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

const DAY_MS: i64 = 86_400_000;

fn num(s: &str, lo: i64, hi: i64) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|v| (lo..=hi).contains(v))
}

/// Epoch milliseconds of `s`; the error says what is accepted.
pub fn parse(s: &str) -> Result<i64, String> {
    let bad = || {
        format!(
            "{s:?} is not a time: give epoch milliseconds, a date (2026-12-07) or an RFC 3339 \
             date-time (2026-12-07T08:30:00Z)"
        )
    };
    let s = s.trim();
    if let Some(ms) = num(s, 0, 253_402_300_799_999) {
        return Ok(ms);
    }
    let (date, time) = match s.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut p = date.split('-');
    let (Some(y), Some(m), Some(d), None) = (p.next(), p.next(), p.next(), p.next()) else {
        return Err(bad());
    };
    let (y, m, d) = match (num(y, 1970, 9999), num(m, 1, 12), num(d, 1, 31)) {
        (Some(y), Some(m), Some(d)) if y.to_string().len() == 4 => (y, m, d),
        _ => return Err(bad()),
    };
    if civil_from_days(days_from_civil(y, m, d)) != (y, m, d) {
        return Err(bad());
    }
    let day = days_from_civil(y, m, d) * DAY_MS;
    let Some(t) = time else {
        return Ok(day);
    };
    // The offset: `Z`, or `+HH:MM` / `-HH:MM`.
    let (clock, offset_min) = if let Some(c) = t.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = t.rfind(['+', '-']) {
        let (c, o) = t.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (h, mi) = o[1..].split_once(':').ok_or_else(bad)?;
        match (num(h, 0, 23), num(mi, 0, 59)) {
            (Some(h), Some(mi)) => (c, sign * (h * 60 + mi)),
            _ => return Err(bad()),
        }
    } else {
        return Err(bad());
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (clock, None),
    };
    let mut p = hms.split(':');
    let (Some(h), Some(mi), sec, None) = (p.next(), p.next(), p.next(), p.next()) else {
        return Err(bad());
    };
    let (h, mi, sec) = match (num(h, 0, 23), num(mi, 0, 59), sec.map(|x| num(x, 0, 60))) {
        (Some(h), Some(mi), None) => (h, mi, 0),
        (Some(h), Some(mi), Some(Some(sec))) => (h, mi, sec),
        _ => return Err(bad()),
    };
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<3}")[..3].parse::<i64>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    Ok(day + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + ms)
}

/// The UTC day of `ms`: `2026-12-07`.
pub fn day(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `ms` as an RFC 3339 UTC date-time: `2026-12-07T08:30:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let r = ms.rem_euclid(DAY_MS);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        day(ms),
        r / 3_600_000,
        r / 60_000 % 60,
        r / 1000 % 60,
        r % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_parse_and_print_back() {
        let ms = parse("2026-12-07").unwrap();
        assert_eq!(ms, 1_796_601_600_000);
        assert_eq!(day(ms), "2026-12-07");
        assert_eq!(parse("2026-12-07T08:30:00Z").unwrap(), ms + 30_600_000);
        assert_eq!(parse("2026-12-07T16:30:00+08:00").unwrap(), ms + 30_600_000);
        assert_eq!(parse("2026-12-07T08:30:00.25Z").unwrap(), ms + 30_600_250);
        assert_eq!(parse("1796601600000").unwrap(), ms);
        assert_eq!(rfc3339(ms + 30_600_250), "2026-12-07T08:30:00.250Z");
        assert_eq!(day(parse("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(day(0), "1970-01-01");
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-12-07T25:00:00Z",
            "2026-12-07T08:30:00",
            "26-12-07",
            "-5",
            "2026-12-07T08:30:00+0800",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
