//! Custom visitor details: what a receiver posts back with a webhook's
//! `license_id` and `token` (`POST /visitors/{id}/details`), validated.

use crate::event::parse_license_id;
use crate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The most fields one set may carry.
pub const MAX_FIELDS: usize = 50;
const MAX_TEXT: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct DetailsRequest {
    pub license_id: String,
    pub token: String,
    /// Names the data set; posting the same id again replaces the set.
    pub set_id: String,
    /// A URL without its scheme (`example.com/ico-64.png`), as LiveChat documents.
    pub icon: Option<String>,
    pub fields: Vec<DetailField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetailField {
    pub name: String,
    /// A string or a number, kept as sent.
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl DetailsRequest {
    /// Reads the two credentials first, so a caller can authenticate before
    /// judging the rest (`401` for a bad token beats `400` for a bad field).
    pub fn credentials(body: &Value) -> Result<(String, String), ValidationError> {
        let obj = object(body)?;
        let license_id = parse_license_id(
            obj.get("license_id")
                .ok_or_else(|| ValidationError::new("license_id", "is required"))?,
        )?;
        let token = obj
            .get("token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ValidationError::new("token", "is required: the token from the webhook")
            })?;
        Ok((license_id, token.to_string()))
    }

    /// Validates a whole request, JSON or form-decoded alike.
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        let (license_id, token) = Self::credentials(body)?;
        let obj = object(body)?;
        for key in obj.keys() {
            if !matches!(
                key.as_str(),
                "license_id" | "token" | "id" | "icon" | "fields"
            ) {
                return Err(ValidationError::new(
                    key.as_str(),
                    "unknown field; send license_id, token, id, icon and fields",
                ));
            }
        }
        let set_id = obj.get("id").and_then(Value::as_str).ok_or_else(|| {
            ValidationError::new("id", "is required: a name for this set of details")
        })?;
        if set_id.is_empty() || set_id.len() > 100 || !set_id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(ValidationError::new(
                "id",
                "must be 1 to 100 letters, digits and punctuation (no spaces)",
            ));
        }
        let icon = match obj.get("icon") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => {
                let lower = s.to_ascii_lowercase();
                if lower.contains("://")
                    || lower.starts_with("http:")
                    || lower.starts_with("https:")
                    || lower.starts_with("//")
                {
                    return Err(ValidationError::new(
                        "icon",
                        "must be given without a scheme, e.g. example.com/ico-64.png",
                    ));
                }
                if s.len() > MAX_TEXT || s.chars().any(char::is_whitespace) {
                    return Err(ValidationError::new(
                        "icon",
                        "must be a URL without a scheme, without spaces",
                    ));
                }
                Some(s.clone())
            }
            Some(_) => return Err(ValidationError::new("icon", "must be a string")),
        };
        let list = match obj.get("fields") {
            Some(Value::Array(list)) if !list.is_empty() => list,
            Some(Value::Array(_)) | None => {
                return Err(ValidationError::new(
                    "fields",
                    "must be a non-empty list of {name, value}",
                ))
            }
            Some(_) => {
                return Err(ValidationError::new(
                    "fields",
                    "must be a list of {name, value}",
                ))
            }
        };
        if list.len() > MAX_FIELDS {
            return Err(ValidationError::new(
                "fields",
                format!("at most {MAX_FIELDS} fields"),
            ));
        }
        let fields = list
            .iter()
            .enumerate()
            .map(|(i, f)| field(i, f))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DetailsRequest {
            license_id,
            token,
            set_id: set_id.to_string(),
            icon,
            fields,
        })
    }
}

fn object(body: &Value) -> Result<&Map<String, Value>, ValidationError> {
    body.as_object()
        .ok_or_else(|| ValidationError::new("body", "must be an object"))
}

fn field(i: usize, f: &Value) -> Result<DetailField, ValidationError> {
    let at = |name: &str| format!("fields[{i}].{name}");
    let obj = f.as_object().ok_or_else(|| {
        ValidationError::new(format!("fields[{i}]"), "must be an object {name, value}")
    })?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "name" | "value" | "url") {
            return Err(ValidationError::new(
                at(key),
                "unknown field; a field has name, value and url",
            ));
        }
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty() && n.len() <= MAX_TEXT)
        .ok_or_else(|| ValidationError::new(at("name"), "is required: a non-empty string"))?;
    let value = match obj.get("value") {
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        Some(Value::Bool(b)) => Value::String(b.to_string()),
        _ => {
            return Err(ValidationError::new(
                at("value"),
                "is required: a string or a number",
            ))
        }
    };
    if value.as_str().is_some_and(|s| s.len() > MAX_TEXT) {
        return Err(ValidationError::new(
            at("value"),
            format!("is longer than {MAX_TEXT} characters"),
        ));
    }
    let url = match obj.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => {
            let ok = url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok || s.len() > MAX_TEXT {
                return Err(ValidationError::new(
                    at("url"),
                    "must be an absolute http:// or https:// URL",
                ));
            }
            Some(s.clone())
        }
        Some(_) => return Err(ValidationError::new(at("url"), "must be a string")),
    };
    Ok(DetailField {
        name: name.to_string(),
        value,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_the_documented_json_and_form_shapes() {
        let json_body = json!({"license_id": 12345, "token": "t", "id": "my-app", "icon": "example.com/ico-64.png",
            "fields": [{"name": "Age", "value": 36, "url": "https://crm.example.com/u/1"}]});
        let r = DetailsRequest::parse(&json_body).unwrap();
        assert_eq!(
            (r.license_id.as_str(), r.set_id.as_str()),
            ("12345", "my-app")
        );
        assert_eq!(r.fields[0].value, json!(36));

        let form = crate::form::parse("license_id=12345&token=t&id=my-app&fields%5B0%5D%5Bname%5D=Age&fields%5B0%5D%5Bvalue%5D=36").unwrap();
        let r = DetailsRequest::parse(&form).unwrap();
        assert_eq!(
            r.fields,
            vec![DetailField {
                name: "Age".into(),
                value: json!("36"),
                url: None
            }]
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let base = json!({"license_id": "1", "token": "t", "id": "a", "fields": [{"name": "n", "value": "v"}]});
        let with = |k: &str, v: Value| {
            let mut b = base.clone();
            b[k] = v;
            DetailsRequest::parse(&b).unwrap_err().field
        };
        assert_eq!(with("id", json!("has space")), "id");
        assert_eq!(with("icon", json!("https://x.io/i.png")), "icon");
        assert_eq!(with("fields", json!([])), "fields");
        assert_eq!(with("fields", json!([{"name": "n"}])), "fields[0].value");
        assert_eq!(
            with(
                "fields",
                json!([{"name": "n", "value": 1, "url": "ftp://x"}])
            ),
            "fields[0].url"
        );
        assert_eq!(with("token", json!("")), "token");
        assert_eq!(with("extra", json!(1)), "extra");
    }
}
