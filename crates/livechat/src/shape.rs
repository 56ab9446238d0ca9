//! Validation of an incoming event's data sections without building them.
//!
//! The typed structs of [`payload`](crate::payload) keep every unknown field
//! (`#[serde(flatten)]`), which makes serde buffer each object and allocate
//! every string: on the ingest path that was most of the cost of parsing an
//! event, for values that are thrown away (hookwire stores and sends the
//! sections' raw JSON). These *shapes* are meant to accept exactly the JSON
//! the typed structs accept (a test below compares the two on valid and
//! invalid inputs; a change to a struct belongs in its shape too) but skip
//! unknown fields, borrow the few strings they keep and allocate nothing else.

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor as SerdeVisitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A JSON string, checked and not kept. Its default stands for a missing
/// field (as `#[serde(default)] String` does); `null` is refused, as there.
#[derive(Default)]
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl SerdeVisitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

/// `T` read from a JSON object only. A derived struct also accepts an array
/// of its fields in order; the typed structs, having `#[serde(flatten)]`,
/// do not, and neither may their shapes.
pub struct Obj<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> SerdeVisitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// What the ingest path needs of a chat: its id and tags (`payload::Chat`).
#[derive(Deserialize)]
#[allow(dead_code)] // fields read only to be checked
pub struct ChatShape<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(default)]
    started_timestamp: Option<i64>,
    #[serde(default)]
    ended_timestamp: Option<i64>,
    #[serde(default)]
    messages: Vec<Obj<MessageShape>>,
    #[serde(default, borrow)]
    pub tags: Vec<Cow<'a, str>>,
}

/// `payload::Message`, checked only.
#[derive(Deserialize)]
#[allow(dead_code)]
struct MessageShape {
    user_type: AnyStr,
    #[serde(default)]
    author_name: AnyStr,
    #[serde(default)]
    agent_id: Option<AnyStr>,
    #[serde(default)]
    text: AnyStr,
    #[serde(default)]
    timestamp: i64,
}

/// What the ingest path needs of a visitor (`payload::Visitor`).
#[derive(Deserialize)]
#[allow(dead_code)]
pub struct VisitorShape<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub email: Option<Cow<'a, str>>,
    #[serde(default)]
    custom_variables: Vec<Obj<CustomVariableShape>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct CustomVariableShape {
    key: AnyStr,
    value: IgnoredAny,
}

/// `payload::SurveyItem`, checked only.
#[derive(Deserialize)]
#[allow(dead_code)]
pub struct SurveyItemShape {
    id: AnyStr,
    #[serde(rename = "type")]
    kind: AnyStr,
    #[serde(default)]
    label: AnyStr,
    #[serde(default)]
    answers: Option<Vec<Obj<SurveyChoiceShape>>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct SurveyChoiceShape {
    label: AnyStr,
    #[serde(default)]
    chosen: bool,
}

/// `payload::Ticket`, checked only.
#[derive(Deserialize)]
#[allow(dead_code)]
pub struct TicketShape {
    id: AnyStr,
    #[serde(default)]
    status: Option<AnyStr>,
    #[serde(default)]
    subject: Option<AnyStr>,
    #[serde(default)]
    events: Vec<IgnoredAny>,
    #[serde(default)]
    groups: Vec<IgnoredAny>,
    #[serde(default)]
    tags: Vec<AnyStr>,
}

#[cfg(test)]
mod tests {
    //! Each shape accepts exactly what its typed struct accepts.

    use super::*;
    use crate::payload::{Chat, SurveyItem, Ticket, Visitor};
    use serde::de::DeserializeOwned;

    fn same<'a, Typed: DeserializeOwned, Shape: Deserialize<'a>>(json: &'a str) {
        let typed = serde_json::from_str::<Typed>(json).is_ok();
        let shape = serde_json::from_str::<Obj<Shape>>(json).is_ok();
        assert_eq!(typed, shape, "typed {typed}, shape {shape}: {json}");
    }

    #[test]
    fn shapes_accept_what_the_typed_structs_accept() {
        for json in [
            r#"{"id":"C1"}"#,
            r#"{"id":"C\u00e91","tags":["a","b"],"future":{"x":[1,{"y":null}]}}"#,
            r#"{"id":"C1","started_timestamp":1,"ended_timestamp":null}"#,
            r#"{"id":"C1","started_timestamp":1.5}"#,
            r#"{"id":"C1","started_timestamp":"1"}"#,
            r#"{"id":1}"#,
            r#"{"id":null}"#,
            r#"{"tags":[]}"#,
            r#"["C1"]"#,
            r#""C1""#,
            r#"{"id":"C1","tags":null}"#,
            r#"{"id":"C1","tags":[1]}"#,
            r#"{"id":"C1","messages":null}"#,
            r#"{"id":"C1","messages":[{"user_type":"agent","text":"hi","timestamp":1,"extra":true}]}"#,
            r#"{"id":"C1","messages":[{"user_type":"agent","author_name":null}]}"#,
            r#"{"id":"C1","messages":[{"user_type":"agent","text":null}]}"#,
            r#"{"id":"C1","messages":[{"user_type":"agent","timestamp":null}]}"#,
            r#"{"id":"C1","messages":[{"user_type":"agent","agent_id":null}]}"#,
            r#"{"id":"C1","messages":[{"user_type":"agent","agent_id":7}]}"#,
            r#"{"id":"C1","messages":[{"text":"no user type"}]}"#,
            r#"{"id":"C1","messages":[["agent"]]}"#,
            r#"{"id":"C1","id":"C2"}"#,
        ] {
            same::<Chat, ChatShape>(json);
        }
        for json in [
            r#"{"id":"V1","name":"N","email":null,"ip":"203.0.113.7"}"#,
            r#"{"id":"V1","custom_variables":[{"key":"k","value":1}]}"#,
            r#"{"id":"V1","custom_variables":[{"key":"k"}]}"#,
            r#"{"id":"V1","custom_variables":[{"key":"k","value":null}]}"#,
            r#"{"id":"V1","custom_variables":null}"#,
            r#"{"id":"V1","name":1}"#,
            r#"{"name":"N"}"#,
            r#"["V1"]"#,
        ] {
            same::<Visitor, VisitorShape>(json);
        }
        for json in [
            r#"{"id":"1","type":"name","label":"Name","answer":"x"}"#,
            r#"{"id":"1","type":"choice","answers":[{"label":"a","chosen":true},{"label":"b"}]}"#,
            r#"{"id":"1","type":"choice","answers":[{"chosen":true}]}"#,
            r#"{"id":"1","type":"choice","answers":null}"#,
            r#"{"id":"1","type":"choice","answers":[{"label":"a","chosen":null}]}"#,
            r#"{"id":"1","label":"no type"}"#,
            r#"{"id":"1","type":"name","label":null}"#,
        ] {
            same::<SurveyItem, SurveyItemShape>(json);
        }
        for json in [
            r#"{"id":"T1","status":"open","assignee":{"id":1},"events":[1,"x"],"tags":["a"]}"#,
            r#"{"id":"T1","events":null}"#,
            r#"{"id":"T1","tags":[null]}"#,
            r#"{"id":"T1","requester":null,"source":7}"#,
            r#"{"status":"open"}"#,
        ] {
            same::<Ticket, TicketShape>(json);
        }
    }
}
