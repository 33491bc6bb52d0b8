//! Canonical JSON: the exact bytes kiln writes for manifests, indexes and configs.
//!
//! The value is first turned into a `serde_json::Value`, whose objects are `BTreeMap`s, so every
//! object's keys come out sorted by their UTF-8 bytes, at every depth, whatever the Rust type
//! held (struct fields, `BTreeMap`s, flattened extras). It is then written compactly: no
//! whitespace, no trailing newline, `serde_json`'s escaping (only `"`, `\` and control characters
//! escaped; `<`, `>`, `&` kept as they are). The same value always gives the same bytes, hence
//! the same digest.
//!
//! This relies on `serde_json` being built without its `preserve_order` feature; the unit test
//! below fails if some crate in the build turns it on.

use serde::Serialize;

/// Serializes `value` canonically (sorted keys, compact).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let v = serde_json::to_value(value)?;
    serde_json::to_vec(&v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_sorted_at_every_depth() {
        #[derive(serde::Serialize)]
        struct S {
            zeta: u8,
            alpha: std::collections::HashMap<&'static str, u8>,
        }
        let mut m = std::collections::HashMap::new();
        for k in ["q", "b", "x", "a", "m"] {
            m.insert(k, 1);
        }
        let bytes = super::to_vec(&S { zeta: 1, alpha: m }).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"alpha":{"a":1,"b":1,"m":1,"q":1,"x":1},"zeta":1}"#
        );
    }
}
