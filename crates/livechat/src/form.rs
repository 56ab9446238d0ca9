//! Form bodies as PHP writes them: `data_types[]=chat&fields[0][name]=Age`.
//!
//! LiveChat's documented clients build bodies with PHP's `http_build_query`,
//! so brackets make arrays and objects. This turns such a body into JSON, so
//! form and JSON requests share one validation path.

use crate::ValidationError;
use serde_json::{Map, Value};

/// The most nesting a key may ask for; deeper keys are refused, not recursed.
const MAX_DEPTH: usize = 8;
/// The largest numeric index accepted, so `a[999999999]` cannot allocate a huge list.
const MAX_INDEX: usize = 1000;

/// Parses `application/x-www-form-urlencoded` text into a JSON object.
/// Every leaf value is a string. `a[]=x` appends; `a[0][b]=x` builds a list of
/// objects; a repeated plain key keeps the last value, as PHP does.
pub fn parse(body: &str) -> Result<Value, ValidationError> {
    let mut root = Value::Object(Map::new());
    for (key, value) in url::form_urlencoded::parse(body.as_bytes()) {
        let path = split_key(&key)?;
        insert(&mut root, &path, Value::String(value.into_owned()), &key)?;
    }
    Ok(root)
}

fn split_key(key: &str) -> Result<Vec<String>, ValidationError> {
    let bad = |msg: &str| ValidationError::new(key.to_string(), msg.to_string());
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    if head.is_empty() {
        return Err(bad("a form key must start with a name"));
    }
    let mut path = vec![head.to_string()];
    while !rest.is_empty() {
        let Some(close) = rest.find(']') else {
            return Err(bad("unbalanced brackets in form key"));
        };
        if !rest.starts_with('[') {
            return Err(bad("unexpected text after ']' in form key"));
        }
        path.push(rest[1..close].to_string());
        rest = &rest[close + 1..];
        if path.len() > MAX_DEPTH {
            return Err(bad("form key nests too deeply"));
        }
    }
    Ok(path)
}

fn insert(
    node: &mut Value,
    path: &[String],
    value: Value,
    key: &str,
) -> Result<(), ValidationError> {
    let bad = |msg: &str| ValidationError::new(key.to_string(), msg.to_string());
    let (first, rest) = path.split_first().expect("paths are never empty");
    let last = rest.is_empty();
    match node {
        Value::Object(map) => {
            if first.is_empty() {
                return Err(bad("'[]' cannot follow a key that holds named fields"));
            }
            if last {
                map.insert(first.clone(), value);
                return Ok(());
            }
            let child = map
                .entry(first.clone())
                .or_insert_with(|| empty_container(&rest[0]));
            insert(child, rest, value, key)
        }
        Value::Array(list) => {
            let index = if first.is_empty() {
                list.len()
            } else {
                match first.parse::<usize>() {
                    Ok(i) if i <= MAX_INDEX => i,
                    _ => {
                        // A named key under a list: PHP would turn the list into a map.
                        let mut map = Map::new();
                        for (i, v) in list.drain(..).enumerate() {
                            map.insert(i.to_string(), v);
                        }
                        *node = Value::Object(map);
                        return insert(node, path, value, key);
                    }
                }
            };
            while list.len() <= index {
                list.push(Value::Null);
            }
            if last {
                list[index] = value;
                return Ok(());
            }
            if !list[index].is_object() && !list[index].is_array() {
                list[index] = empty_container(&rest[0]);
            }
            insert(&mut list[index], rest, value, key)
        }
        _ => Err(bad("form key both holds a value and nested fields")),
    }
}

fn empty_container(next: &str) -> Value {
    if next.is_empty() || next.parse::<usize>().is_ok() {
        Value::Array(Vec::new())
    } else {
        Value::Object(Map::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_http_build_query_writes() {
        let v = parse("license_id=12345&token=abc&id=my-app&fields%5B0%5D%5Bname%5D=Age&fields%5B0%5D%5Bvalue%5D=36&fields%5B1%5D%5Bname%5D=Position&fields%5B1%5D%5Bvalue%5D=CEO").unwrap();
        assert_eq!(
            v,
            json!({"license_id":"12345","token":"abc","id":"my-app",
                   "fields":[{"name":"Age","value":"36"},{"name":"Position","value":"CEO"}]})
        );
    }

    #[test]
    fn appends_with_empty_brackets() {
        let v = parse(
            "event_type=chat_started&data_types[]=chat&data_types[]=visitor&url=https%3A%2F%2Fx.io",
        )
        .unwrap();
        assert_eq!(v["data_types"], json!(["chat", "visitor"]));
    }

    #[test]
    fn refuses_malformed_keys() {
        assert!(parse("a[b=1").is_err());
        assert!(parse("[x]=1").is_err());
        assert!(parse("a=1&a[b]=2").is_err());
        assert!(parse(&format!("a{}=1", "[x]".repeat(20))).is_err());
        assert_eq!(parse("a[5000]=1").unwrap(), json!({"a": {"5000": "1"}}));
    }
}
