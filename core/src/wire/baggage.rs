//! W3C Baggage: `key=value;property;key=value, ...`, values percent-encoded.
//!
//! One defined result for every input: a header over 8,192 bytes is dropped
//! whole; members past the 64th are dropped; an invalid member is dropped
//! alone; a duplicated key keeps its last value (in the first key's place);
//! percent-decoded bytes that are not UTF-8 become U+FFFD.

use std::fmt;

use super::timeout::is_ows;

/// The most bytes of `baggage` polyctx reads or sends.
pub const MAX_BYTES: usize = 8_192;
/// The most members polyctx keeps or sends.
pub const MAX_MEMBERS: usize = 64;

/// One baggage member's value and its properties (`;key` or `;key=value`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BaggageEntry {
    pub value: String,
    pub properties: Vec<(String, Option<String>)>,
}

impl BaggageEntry {
    /// An entry with no properties.
    pub fn new(value: impl Into<String>) -> BaggageEntry {
        BaggageEntry {
            value: value.into(),
            properties: Vec::new(),
        }
    }
}

/// Baggage: members in the order they were first seen.
pub type Baggage = Vec<(String, BaggageEntry)>;

/// A baggage key that is not an HTTP token, given to [`format_baggage`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidKey(pub String);

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "baggage key {:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)",
            self.0
        )
    }
}

impl std::error::Error for InvalidKey {}

/// Parses the `baggage` field values (combined in order).
pub fn parse_baggage<S: AsRef<str>>(values: &[S]) -> Baggage {
    let total: usize = values.iter().map(|v| v.as_ref().len()).sum::<usize>() + values.len().saturating_sub(1);
    let mut baggage = Baggage::new();
    if total > MAX_BYTES {
        return baggage;
    }
    for member in values.iter().flat_map(|v| v.as_ref().split(',')) {
        let member = member.trim_matches(is_ows);
        if member.is_empty() {
            continue;
        }
        let Some((key, entry)) = parse_member(member) else {
            continue;
        };
        if let Some(i) = baggage.iter().position(|(k, _)| *k == key) {
            baggage[i].1 = entry;
        } else if baggage.len() < MAX_MEMBERS {
            baggage.push((key, entry));
        }
    }
    baggage
}

fn parse_member(member: &str) -> Option<(String, BaggageEntry)> {
    let mut parts = member.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let key = key.trim_matches(is_ows);
    if !is_token(key) {
        return None;
    }
    let value = decode(value.trim_matches(is_ows))?;
    let mut properties = Vec::new();
    for property in parts {
        let property = property.trim_matches(is_ows);
        let (pkey, pvalue) = match property.split_once('=') {
            Some((k, v)) => (k.trim_matches(is_ows), Some(decode(v.trim_matches(is_ows))?)),
            None => (property, None),
        };
        if !is_token(pkey) {
            return None;
        }
        properties.push((pkey.to_owned(), pvalue));
    }
    Some((key.to_owned(), BaggageEntry { value, properties }))
}

/// Formats baggage for sending: values percent-encoded, at most
/// [`MAX_MEMBERS`] members and [`MAX_BYTES`] bytes (members that would go
/// past either are left out). `Ok(None)` when there is nothing to send.
pub fn format_baggage<'a, I>(entries: I) -> Result<Option<String>, InvalidKey>
where
    I: IntoIterator<Item = (&'a str, &'a BaggageEntry)>,
{
    let mut out = String::new();
    let mut members = 0;
    for (key, entry) in entries {
        if !is_token(key) {
            return Err(InvalidKey(key.to_owned()));
        }
        let mut member = format!("{key}={}", encode(&entry.value));
        for (pkey, pvalue) in &entry.properties {
            if !is_token(pkey) {
                return Err(InvalidKey(pkey.clone()));
            }
            member.push(';');
            member.push_str(pkey);
            if let Some(v) = pvalue {
                member.push('=');
                member.push_str(&encode(v));
            }
        }
        let separator = usize::from(!out.is_empty());
        if members == MAX_MEMBERS || out.len() + separator + member.len() > MAX_BYTES {
            continue;
        }
        if separator == 1 {
            out.push(',');
        }
        out.push_str(&member);
        members += 1;
    }
    Ok((!out.is_empty()).then_some(out))
}

/// An HTTP token (RFC 9110 `tchar`s), non-empty.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
}

/// `baggage-octet`: printable ASCII other than space, `"`, `,`, `;`, `\`.
fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// Percent-decodes a value; `None` if it holds a character baggage does not
/// allow or a broken escape. Bytes that are not UTF-8 become U+FFFD.
fn decode(value: &str) -> Option<String> {
    let b = value.as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !is_baggage_octet(c) {
            return None;
        }
        if c == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let digit = |h: u8| (h as char).to_digit(16);
            bytes.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
            i += 3;
        } else {
            bytes.push(c);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Percent-encodes every byte that is not a baggage octet, and `%` itself.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &c in value.as_bytes() {
        if is_baggage_octet(c) && c != b'%' {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_values_and_properties() {
        let b = parse_baggage(&["userId=alice, serverNode = DF%2028 ;p1;p2=v%3D", "isProduction=false"]);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0], ("userId".into(), BaggageEntry::new("alice")));
        assert_eq!(b[1].1.value, "DF 28");
        assert_eq!(
            b[1].1.properties,
            vec![("p1".into(), None), ("p2".into(), Some("v=".into()))]
        );
        let text = format_baggage(b.iter().map(|(k, e)| (k.as_str(), e))).unwrap().unwrap();
        assert_eq!(text, "userId=alice,serverNode=DF%2028;p1;p2=v=,isProduction=false");
        assert_eq!(parse_baggage(&[text]), b, "round trip");
    }

    #[test]
    fn every_malformed_input_has_one_result() {
        assert_eq!(
            parse_baggage(&["a=1,bad key=2,c=%zz,d=\"q\",e=3"]).len(),
            2,
            "invalid members dropped alone"
        );
        let dup = parse_baggage(&["a=1,b=2,a=3"]);
        assert_eq!(
            dup,
            vec![
                ("a".into(), BaggageEntry::new("3")),
                ("b".into(), BaggageEntry::new("2"))
            ]
        );
        assert_eq!(parse_baggage(&["k=%FF%FE"])[0].1.value, "\u{FFFD}\u{FFFD}");
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        assert_eq!(parse_baggage(&[many.join(",")]).len(), MAX_MEMBERS);
        let big = format!("k={}", "x".repeat(MAX_BYTES));
        assert!(parse_baggage(&[big]).is_empty(), "over 8,192 bytes: dropped whole");
    }

    #[test]
    fn formatting_refuses_bad_keys_and_respects_limits() {
        let e = BaggageEntry::new("v");
        assert!(format_baggage([("bad key", &e)]).is_err());
        assert_eq!(format_baggage(std::iter::empty()).unwrap(), None);
        let big = BaggageEntry::new("x".repeat(5_000));
        let text = format_baggage([("a", &big), ("b", &big), ("c", &e)]).unwrap().unwrap();
        assert!(text.len() <= MAX_BYTES && text.starts_with("a=") && text.ends_with(",c=v"));
    }
}
