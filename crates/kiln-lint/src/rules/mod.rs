//! The rules, one module each, named after BuildKit's rule (`StageNameCasing` is
//! [`stage_name_casing`]). Each module's `RULE` carries the rule's name, description, URL
//! and documentation; the checks themselves run where BuildKit runs them, driven by the
//! crate's walk over the Dockerfile.

pub mod consistent_instruction_casing;
pub mod copy_ignored_file;
pub mod duplicate_stage_name;
pub mod expose_invalid_format;
pub mod expose_proto_casing;
pub mod from_as_casing;
pub mod from_platform_flag_const_disallowed;
pub mod invalid_base_image_platform;
pub mod invalid_default_arg_in_from;
pub mod invalid_definition_description;
pub mod json_args_recommended;
pub mod legacy_key_value_format;
pub mod maintainer_deprecated;
pub mod multiple_instructions_disallowed;
pub mod no_empty_continuation;
pub mod redundant_target_platform;
pub mod reserved_stage_name;
pub mod secrets_used_in_arg_or_env;
pub mod stage_name_casing;
pub mod undefined_arg_in_from;
pub mod undefined_var;
pub mod workdir_relative_path;

use crate::Rule;

/// Every rule, in BuildKit's order (`linter/ruleset.go`).
pub static RULES: [&Rule; 22] = [
    &stage_name_casing::RULE,
    &from_as_casing::RULE,
    &no_empty_continuation::RULE,
    &consistent_instruction_casing::RULE,
    &duplicate_stage_name::RULE,
    &reserved_stage_name::RULE,
    &json_args_recommended::RULE,
    &maintainer_deprecated::RULE,
    &undefined_arg_in_from::RULE,
    &workdir_relative_path::RULE,
    &undefined_var::RULE,
    &multiple_instructions_disallowed::RULE,
    &legacy_key_value_format::RULE,
    &invalid_base_image_platform::RULE,
    &redundant_target_platform::RULE,
    &secrets_used_in_arg_or_env::RULE,
    &invalid_default_arg_in_from::RULE,
    &from_platform_flag_const_disallowed::RULE,
    &copy_ignored_file::RULE,
    &invalid_definition_description::RULE,
    &expose_proto_casing::RULE,
    &expose_invalid_format::RULE,
];

/// The rule named `name` (BuildKit's spelling, case-sensitive).
pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().copied().find(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `JSONArgsRecommended` -> `json-args-recommended`.
    fn kebab_case(name: &str) -> String {
        let chars: Vec<char> = name.chars().collect();
        let mut out = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let prev_lower = i > 0 && chars[i - 1].is_ascii_lowercase();
            let ends_capitals = i > 0
                && chars[i - 1].is_ascii_uppercase()
                && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if c.is_ascii_uppercase() && (prev_lower || ends_capitals) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }

    #[test]
    fn every_rule_is_documented_and_linked() {
        let mut names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 22);
        for r in RULES {
            let doc = r.documentation();
            for part in [
                "## What it does",
                "## Why is this bad?",
                "## Example",
                "Use instead:",
            ] {
                assert!(doc.contains(part), "{} lacks {part}", r.name);
            }
            let kebab = kebab_case(r.name);
            match r.url {
                Some(url) => assert_eq!(
                    url,
                    format!("https://docs.docker.com/go/dockerfile/rule/{kebab}/")
                ),
                None => assert_eq!(r.name, "InvalidBaseImagePlatform"),
            }
        }
        assert_eq!(rule("UndefinedVar").map(|r| r.experimental), Some(false));
        assert!(rule("InvalidDefinitionDescription").unwrap().experimental);
        assert!(rule("undefinedvar").is_none());
    }
}
