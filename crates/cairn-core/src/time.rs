//! Timestamps are unix seconds (UTC). On the wire they are accepted either as an integer number of
//! seconds or as an RFC 3339 string, because clients send both and neither is worth a round trip to fix.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Unix seconds. Wrapped so that its wire format (int or RFC 3339) is decided in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

/// Earliest and latest accepted timestamps: 1970 to 2200. Anything outside is almost surely a unit
/// mistake (milliseconds sent as seconds) and is rejected rather than silently stored.
pub const MIN_TIMESTAMP: i64 = 0;
pub const MAX_TIMESTAMP: i64 = 7_258_118_400;

pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(now_unix())
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(secs) = text.parse::<i64>() {
            return Self::from_secs(secs);
        }
        let (local, offset) = split_utc_offset(text);
        let t = humantime::parse_rfc3339_weak(local).map_err(|e| {
            format!("`{text}` is not a timestamp ({e}); send unix seconds or RFC 3339 like 2024-05-01T12:00:00Z or 2024-05-01T13:00:00+01:00")
        })?;
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64 - offset,
            Err(_) => return Err(format!("`{text}` is before 1970")),
        };
        if secs < MIN_TIMESTAMP {
            return Err(format!("`{text}` is before 1970"));
        }
        Self::from_secs(secs)
    }

    pub fn from_secs(secs: i64) -> Result<Self, String> {
        if !(MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&secs) {
            return Err(format!(
                "timestamp {secs} is outside 1970..2200 in unix seconds (milliseconds sent as seconds?)"
            ));
        }
        Ok(Timestamp(secs))
    }

    pub fn to_rfc3339(self) -> String {
        let t = UNIX_EPOCH + Duration::from_secs(self.0.max(0) as u64);
        humantime::format_rfc3339_seconds(t).to_string()
    }
}

/// Splits an RFC 3339 offset (`+01:00`, `-05:30`, also `+0100`) off the end of a date-time: the
/// local date-time, and the offset in seconds east of UTC (0 when there is none, or for `Z`, which
/// the date-time parser reads itself). An offset can only follow the time, so the date's hyphens
/// (within the first ten bytes) are never taken for one.
fn split_utc_offset(text: &str) -> (&str, i64) {
    let bytes = text.as_bytes();
    for (len, colon) in [(6, true), (5, false)] {
        if bytes.len() < 11 + len {
            continue;
        }
        let at = bytes.len() - len;
        let sign = match bytes[at] {
            b'+' => 1,
            b'-' => -1,
            _ => continue,
        };
        let rest = &text[at + 1..];
        let (hh, mm) = if colon {
            if rest.as_bytes()[2] != b':' {
                continue;
            }
            (&rest[..2], &rest[3..])
        } else {
            (&rest[..2], &rest[2..])
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(hh) && digits(mm)) {
            continue;
        }
        let (h, m): (i64, i64) = (hh.parse().unwrap_or(0), mm.parse().unwrap_or(0));
        if h > 23 || m > 59 {
            continue;
        }
        return (&text[..at], sign * (h * 3600 + m * 60));
    }
    (text, 0)
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_rfc3339())
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("unix seconds or an RFC 3339 timestamp string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Timestamp::from_secs(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                let v = i64::try_from(v).map_err(|_| E::custom("timestamp too large"))?;
                Timestamp::from_secs(v).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if !v.is_finite() {
                    return Err(E::custom("timestamp must be finite"));
                }
                Timestamp::from_secs(v.floor() as i64).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).map_err(E::custom)
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(V)
        } else {
            d.deserialize_i64(V)
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Integer]))
            .description(Some(
                "RFC 3339 timestamp (responses) or unix seconds / RFC 3339 (requests)",
            ))
            .into()
    }
}
#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_rfc3339_to_the_same_instant() {
        let a = Timestamp::parse("1700000000").unwrap();
        let b = Timestamp::parse("2023-11-14T22:13:20Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_rfc3339(), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn an_offset_names_the_same_instant_as_utc() {
        let utc = Timestamp::parse("2023-11-14T22:13:20Z").unwrap();
        for text in [
            "2023-11-14T23:13:20+01:00",
            "2023-11-14T23:13:20+0100",
            "2023-11-14T16:43:20-05:30",
            "2023-11-14T22:13:20+00:00",
            "2023-11-14T23:13:20.250+01:00",
        ] {
            assert_eq!(Timestamp::parse(text).unwrap(), utc, "{text}");
        }
        let json: Timestamp = serde_json::from_str("\"2023-11-15T00:13:20+02:00\"").unwrap();
        assert_eq!(json, utc);
        // A bad hour is no offset; an offset that puts the instant before 1970 is refused; a
        // date's own hyphens are never read as an offset.
        assert!(Timestamp::parse("2023-11-14T23:13:20+25:00").is_err());
        assert!(Timestamp::parse("1970-01-01T00:30:00+01:00").is_err());
        assert!(Timestamp::parse("2023-11-14").is_err());
    }

    #[test]
    fn rejects_milliseconds_and_garbage() {
        assert!(Timestamp::parse("1700000000000").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(serde_json::from_str::<Timestamp>("-5").is_err());
    }

    #[test]
    fn json_round_trip_keeps_the_instant() {
        let t = Timestamp(1_600_000_123);
        let s = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Timestamp>(&s).unwrap(), t);
    }
}
