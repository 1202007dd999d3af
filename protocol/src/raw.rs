//! [`RawJson`]: a JSON value kept as the exact text it arrived as.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::hash::{Hash, Hasher};

/// Raw values nested deeper than this are refused, like serde_json refuses
/// deeper values of the frames' own structs: whoever decodes the value later
/// (an app's handler) must not be handed one that exhausts its stack.
pub const MAX_DEPTH: usize = 128;

/// One JSON value kept as the exact bytes it was sent as (serde_json's
/// [`RawValue`]): a `send` body or a topic message's `data` is forwarded
/// without being parsed into a tree or written back, so nothing is
/// reordered, rounded or re-escaped on the way.
///
/// ```
/// use tether_protocol::RawJson;
/// assert_eq!(RawJson::new(r#"{"hi": 1}"#).unwrap().as_str(), r#"{"hi": 1}"#);
/// assert!(RawJson::new("{hi: 1}").is_err());
/// assert_eq!(RawJson::from_value(&[1, 2]).unwrap().as_str(), "[1,2]");
/// ```
#[derive(Debug, Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Checks that `text` is one JSON value and keeps it as it is.
    ///
    /// # Errors
    /// serde_json's error when `text` is not one JSON value, or nests deeper
    /// than [`MAX_DEPTH`].
    pub fn new(text: impl Into<String>) -> Result<Self, serde_json::Error> {
        let raw = RawValue::from_string(text.into())?;
        check_depth(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(Self(raw))
    }

    /// Serializes `value` with serde_json.
    ///
    /// # Errors
    /// serde_json's error when `value` cannot be serialized (a map with
    /// non-string keys, a failing `Serialize` impl) or nests deeper than
    /// [`MAX_DEPTH`].
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(value)?;
        check_depth(raw.get()).map_err(serde::ser::Error::custom)?;
        Ok(Self(raw))
    }

    /// JSON `null`.
    pub fn null() -> Self {
        Self::new("null").expect("null is JSON")
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The JSON text, owned.
    pub fn into_string(self) -> String {
        self.0.get().to_owned()
    }

    /// The value as serde_json's [`RawValue`], for decoding it into an
    /// app's own type without copying: `serde_json::from_str(raw.as_str())`.
    pub fn as_raw_value(&self) -> &RawValue {
        &self.0
    }
}

impl From<Box<RawValue>> for RawJson {
    fn from(value: Box<RawValue>) -> Self {
        Self(value)
    }
}

impl From<RawJson> for Box<RawValue> {
    fn from(value: RawJson) -> Self {
        value.0
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RawJson {}

impl Hash for RawJson {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Display for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        check_depth(raw.get()).map_err(serde::de::Error::custom)?;
        Ok(Self(raw))
    }
}

/// Checks that valid JSON `text` nests at most [`MAX_DEPTH`] arrays and
/// objects.
fn check_depth(text: &str) -> Result<(), &'static str> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for byte in text.bytes() {
        match (in_string, byte) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (true, b'"') | (false, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err("JSON nested deeper than 128 levels");
                }
            }
            (false, b']' | b'}') => depth -= 1,
            _ => {}
        }
    }
    Ok(())
}
