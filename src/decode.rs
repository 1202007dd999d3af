//! Decoding a topic message's `event` + `data` into the app's type without
//! re-serialising the frame: a small [`serde::Deserializer`] that shows the
//! two as the map `{"event": <event>, "data": <data>}` (adjacently tagged
//! enums, structs with those two fields, `serde_json::Value`), or as the
//! enum variant `<event>` with `data` as its content (externally tagged
//! enums, serde's default). `data` is parsed straight from the frame's raw
//! text.

use serde::de::value::Error;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

/// Decodes `event` + `data` (raw JSON text) into `E`.
///
/// # Errors
/// What serde reports: an unknown event, data of the wrong shape, ...
pub(crate) fn event<E: DeserializeOwned>(event: &str, data: &str) -> Result<E, Error> {
    E::deserialize(EventData { event, data })
}

/// Decodes raw JSON text into `T` (an app frame's payload).
///
/// # Errors
/// What serde_json reports.
pub(crate) fn payload<T: DeserializeOwned>(payload: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(payload)
}

/// Parses `text` as exactly one JSON value through `seed`.
fn json<'de, S: DeserializeSeed<'de>>(seed: S, text: &'de str) -> Result<S::Value, Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = seed.deserialize(&mut de).map_err(de::Error::custom)?;
    de.end().map_err(de::Error::custom)?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct EventData<'de> {
    event: &'de str,
    data: &'de str,
}

impl<'de> de::Deserializer<'de> for EventData<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_map(Fields {
            source: self,
            next: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// The two entries `event` and `data`, in that order.
struct Fields<'de> {
    source: EventData<'de>,
    next: u8,
}

const KEYS: [&str; 2] = ["event", "data"];

impl<'de> de::MapAccess<'de> for Fields<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some(key) = KEYS.get(usize::from(self.next)) else {
            return Ok(None);
        };
        seed.deserialize((*key).into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let index = self.next;
        self.next += 1;
        match index {
            0 => seed.deserialize(self.source.event.into_deserializer()),
            _ => json(seed, self.source.data),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(KEYS.len() - usize::from(self.next))
    }
}

impl<'de> de::EnumAccess<'de> for EventData<'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let variant = seed.deserialize(self.event.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for EventData<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        json(std::marker::PhantomData::<()>, self.data)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        json(seed, self.data)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        let mut de = serde_json::Deserializer::from_str(self.data);
        let value =
            de::Deserializer::deserialize_seq(&mut de, visitor).map_err(de::Error::custom)?;
        de.end().map_err(de::Error::custom)?;
        Ok(value)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut de = serde_json::Deserializer::from_str(self.data);
        let value =
            de::Deserializer::deserialize_map(&mut de, visitor).map_err(de::Error::custom)?;
        de.end().map_err(de::Error::custom)?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "event", content = "data", rename_all = "snake_case")]
    enum Adjacent {
        Said { text: String },
        Typing,
        Moved(u32),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum External {
        Said { text: String },
        Typing,
        Moved(u32),
        Pair(u8, u8),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Plain {
        event: String,
        data: serde_json::Value,
    }

    #[test]
    fn adjacently_tagged_enums_decode() {
        let said: Adjacent = event("said", r#"{"text":"hi"}"#).unwrap();
        assert_eq!(said, Adjacent::Said { text: "hi".into() });
        assert_eq!(
            event::<Adjacent>("typing", "null").unwrap(),
            Adjacent::Typing
        );
        assert_eq!(
            event::<Adjacent>("moved", " 7 ").unwrap(),
            Adjacent::Moved(7)
        );
    }

    #[test]
    fn externally_tagged_enums_decode_the_event_as_the_variant() {
        let said: External = event("said", r#"{"text":"hi"}"#).unwrap();
        assert_eq!(said, External::Said { text: "hi".into() });
        assert_eq!(
            event::<External>("typing", "null").unwrap(),
            External::Typing
        );
        assert_eq!(event::<External>("moved", "7").unwrap(), External::Moved(7));
        assert_eq!(
            event::<External>("pair", "[1,2]").unwrap(),
            External::Pair(1, 2)
        );
    }

    #[test]
    fn structs_and_values_see_both_fields() {
        let plain: Plain = event("x.y", r#"{"a":[1,2]}"#).unwrap();
        assert_eq!(plain.event, "x.y");
        assert_eq!(plain.data, serde_json::json!({"a": [1, 2]}));
        let value: serde_json::Value = event("e", "true").unwrap();
        assert_eq!(value, serde_json::json!({"event": "e", "data": true}));
    }

    #[test]
    fn what_does_not_fit_is_an_error_naming_why() {
        let unknown = event::<Adjacent>("shouted", "{}").unwrap_err().to_string();
        assert!(unknown.contains("shouted"), "{unknown}");
        let shape = event::<Adjacent>("said", r#"{"text":5}"#)
            .unwrap_err()
            .to_string();
        assert!(shape.contains("invalid type"), "{shape}");
        assert!(
            event::<External>("typing", "{}").is_err(),
            "a unit variant takes null only"
        );
        assert!(event::<External>("said", "{} 1").is_err(), "one value only");
        assert!(event::<External>("nope", "null").is_err());
    }

    #[test]
    fn payloads_decode_with_serde_json() {
        assert_eq!(payload::<Vec<u8>>("[1,2]").unwrap(), vec![1, 2]);
        assert!(payload::<Vec<u8>>("{}").is_err());
    }
}
