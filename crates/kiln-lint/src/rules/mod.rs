//! The rules, one module each, named after the rule (`StageNameCasing` is
//! [`stage_name_casing`]). Each module's `RULE` carries the rule's name, description, URL
//! and documentation; the checks themselves run where BuildKit runs them, driven by the
//! crate's walk over the Dockerfile.
//!
//! [`RULES`] are BuildKit's 22; [`KILN_RULES`] are kiln's own, with stable codes (`KL001`),
//! the hadolint codes they stand in for, and a page each under `docs/lint/`.

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

pub mod add_instead_of_copy;
pub mod build_tools_in_final_stage;
pub mod copy_from_whole_tree;
pub mod final_stage_runs_as_root;
pub mod loose_apt_get_install;
pub mod package_cache_in_layer;
pub mod run_cd;
pub mod secret_value_in_arg_or_env;
pub mod unfiltered_context_copy;
pub mod unpinned_base_image;
pub mod unused_stage;

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

/// kiln's own rules, in the order of their codes. A code, once given, is never reused.
pub static KILN_RULES: [&Rule; 11] = [
    &unpinned_base_image::RULE,
    &build_tools_in_final_stage::RULE,
    &package_cache_in_layer::RULE,
    &unfiltered_context_copy::RULE,
    &secret_value_in_arg_or_env::RULE,
    &add_instead_of_copy::RULE,
    &unused_stage::RULE,
    &loose_apt_get_install::RULE,
    &run_cd::RULE,
    &final_stage_runs_as_root::RULE,
    &copy_from_whole_tree::RULE,
];

/// Every rule: BuildKit's, then kiln's.
pub fn all_rules() -> impl Iterator<Item = &'static Rule> {
    RULES.iter().chain(KILN_RULES.iter()).copied()
}

/// The rule named `name` (exact spelling, case-sensitive), or for kiln's rules coded `name`.
pub fn rule(name: &str) -> Option<&'static Rule> {
    all_rules().find(|r| r.is_named(name))
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
        assert!(
            RULES
                .iter()
                .all(|r| r.code.is_none() && r.hadolint.is_empty())
        );
    }

    #[test]
    fn kiln_rules_have_codes_pages_and_documentation() {
        let mut seen = Vec::new();
        for (i, r) in KILN_RULES.iter().enumerate() {
            let code = format!("KL{:03}", i + 1);
            assert_eq!(r.code, Some(code.as_str()), "{}", r.name);
            assert_eq!(r.url, Some(format!("docs/lint/{code}.md").as_str()));
            assert!(!r.experimental);
            assert!(rule(r.name).is_some_and(|f| std::ptr::eq(f, *r)));
            assert!(rule(&code).is_some_and(|f| std::ptr::eq(f, *r)));
            assert!(!seen.contains(&r.name) && RULES.iter().all(|b| b.name != r.name));
            seen.push(r.name);
            let doc = r.documentation();
            for part in [
                "## What it does",
                "## Why is this bad?",
                "## Example",
                "Use instead:",
            ] {
                assert!(doc.contains(part), "{} lacks {part}", r.name);
            }
            for alias in r.hadolint {
                assert!(alias.starts_with("DL3") && alias.len() == 6, "{alias}");
            }
        }
    }
}
